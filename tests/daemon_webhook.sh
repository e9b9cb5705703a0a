#!/bin/sh
# tests/daemon_webhook.sh - webhooks and Idempotency-Key on the real
# lowrankd binary (tests/daemon_webhook.py does the work; prints TAP).
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
PY="${PYTHON3:-/usr/bin/python3}"
[ -x "$PY" ] || PY=/usr/bin/python3
exec "$PY" "$top_srcdir/tests/daemon_webhook.py" "$top_builddir/lowrankd" "$top_srcdir/tests/data"
