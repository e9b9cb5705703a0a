#!/bin/sh
# Replays the checked-in corpus tests/fuzz/range.in through the fuzz_range target
# (under ASan+UBSan when configured with them); prints TAP. Run by `make check`.
here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$here/../..}"
: "${top_builddir:=.}"
exec "$top_builddir/tests/fuzz/fuzz_range" "$top_srcdir/tests/fuzz/range.in"
