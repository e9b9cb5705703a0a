#!/bin/sh
# Replays the checked-in corpus tests/fuzz/webhook.in through the fuzz_webhook target
# (under ASan+UBSan when configured with them); prints TAP. Run by `make check`.
here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$here/../..}"
: "${top_builddir:=.}"
exec "$top_builddir/tests/fuzz/fuzz_webhook" "$top_srcdir/tests/fuzz/webhook.in"
