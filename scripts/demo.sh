#!/usr/bin/env bash
# The local demo (README command 1): install what is missing, then run LDAP, the
# devcluster and JupyterHub on http://127.0.0.1:${DEMO_PORT:-8000}. Ctrl-C stops it.
# Must run as root. See scripts/demo.py for DEMO_PORT, DEMO_STATE_DIR and
# DEMO_EXIT_AFTER_READY.
set -euo pipefail
cd "$(dirname "$0")/.."
SETUP_BROWSER=0 bash scripts/setup.sh
export PATH="$PWD/.tools/bin:$PWD/.tools/node/node_modules/.bin:$PATH"
exec .venv/bin/python scripts/demo.py
