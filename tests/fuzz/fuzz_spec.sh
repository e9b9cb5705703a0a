#!/bin/sh
# Replays the checked-in corpus tests/fuzz/spec.in through the fuzz_spec target
# (under ASan+UBSan when configured with them); prints TAP. Run by `make check`.
here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$here/../..}"
: "${top_builddir:=.}"
exec "$top_builddir/tests/fuzz/fuzz_spec" "$top_srcdir/tests/fuzz/spec.in"
