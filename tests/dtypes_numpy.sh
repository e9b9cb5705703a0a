#!/bin/sh
# Element types against numpy: every integer type, float16 and double
# through Add, Sub, Mul, Div, Mod, Max, Min and the comparisons, and Cast
# between every pair of types, run by `lowrank run` on seeded random data
# with the edge values (tests/dtypes_numpy.py prints the TAP).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
"$PYTHON3" "$top_srcdir/tests/dtypes_numpy.py" "$LOWRANK" "$TMP"
