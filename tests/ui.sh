#!/bin/sh
# tests/ui.sh - the dashboard in Debian's headless chromium, driven by
# python3-selenium and chromium-driver against the real lowrankd (see
# tests/ui_browser.py for what it checks). Prints TAP.
# LR_UI_SCREENSHOTS=DIR saves screenshots of the list and a job page there
# (the ones in docs/ come from LR_UI_SCREENSHOTS=$top_srcdir/docs).
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
: "${PYTHON3:=/usr/bin/python3}"
[ -x "$PYTHON3" ] || PYTHON3=/usr/bin/python3
export top_srcdir top_builddir
exec "$PYTHON3" "$top_srcdir/tests/ui_browser.py"
