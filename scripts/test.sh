#!/usr/bin/env bash
# Set up (apt, npm, pip: see scripts/setup.sh) and run every check: lint, format, types,
# docs, and the test suite on both JupyterHub lines (6.x from PyPI, 5.5 as in the chart's
# hub image). Exits non-zero if any step fails; every step runs regardless.
set -uo pipefail
cd "$(dirname "$0")/.."
SETUP_BROWSER=1 SETUP_JH5=1 bash scripts/setup.sh || exit 1
export PATH="$PWD/.tools/bin:$PWD/.tools/node/node_modules/.bin:$PATH"

failed=()
step() {  # step NAME CMD...
    local name=$1; shift
    echo "=== $name: $*"
    if ! "$@"; then failed+=("$name"); fi
}

step ruff-lint   .venv/bin/ruff check .
step ruff-format .venv/bin/ruff format --check .
step mypy        .venv/bin/mypy
step docs        .venv/bin/sphinx-build -q -W --keep-going -b html docs docs/_build/html
step tests-jupyterhub-5 .venv-jh5/bin/python -m pytest -q -p no:cacheprovider "$@"
step tests-jupyterhub-6 .venv/bin/python -m pytest -q -p no:cacheprovider "$@"

if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED steps: ${failed[*]}"
    exit 1
fi
echo "all checks passed"
