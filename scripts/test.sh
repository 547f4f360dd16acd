#!/usr/bin/env bash
# Set up (apt, npm, pip: see scripts/setup.sh) and run every check: lint, format, types,
# docs, and the test suite on both JupyterHub lines (6.x from PyPI, 5.5 as in the chart's
# hub image). Exits non-zero if any step fails; every step runs regardless.
#
# The two test suites run side by side (they mostly wait on real servers, and every
# fixture picks its own ports and directories); TEST_SERIAL=1 runs them one after the
# other. Tests marked line_independent (pyproject.toml: they run no JupyterHub or
# KubeSpawner code from the suite's venv, e.g. devcluster/, placement, chart rendering, the
# hub image's own environment) run in one suite only: the stand-in's own tests
# (devcluster/tests, marked stand_in) in the JupyterHub 5 suite, the others in the 6
# suite; every other test runs in both. Extra arguments go to both pytest runs (a -m of
# their own replaces that filter).
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

# NAME:VENV:MARKERS (pytest -m, empty for every test)
# Line-independent tests run once (see above): that evens out the suites' time.
suites=("jupyterhub-5:.venv-jh5:not line_independent or stand_in"
        "jupyterhub-6:.venv:not (line_independent and stand_in)")
# One value per run: the deploy tests build the hub image's environment fresh once per
# run (tests/deploy/hub_image_support.py); pytest run by hand reuses the newest build.
export LSST_HUB_TEST_RUN="$(date -u +%Y%m%dT%H%M%S)-$$"
logs=$(mktemp -d)
run_suite() {  # run_suite NAME VENV MARKERS [pytest args]
    local name=$1 venv=$2 markers=$3; shift 3
    local select=()
    if [ -n "$markers" ]; then select=(-m "$markers"); fi
    "$venv/bin/python" -m pytest -q -p no:cacheprovider "${select[@]}" "$@" \
        > "$logs/$name.log" 2>&1
}
for s in "${suites[@]}"; do
    IFS=: read -r name venv markers <<< "$s"
    echo "=== tests-$name: $venv/bin/python -m pytest${markers:+ -m \"$markers\"} $*"
    if [ "${TEST_SERIAL:-0}" = 1 ]; then
        run_suite "$name" "$venv" "$markers" "$@"; echo $? > "$logs/$name.rc"
    else
        ( run_suite "$name" "$venv" "$markers" "$@"; echo $? > "$logs/$name.rc" ) &
    fi
done
wait
for s in "${suites[@]}"; do
    name=${s%%:*}
    echo "=== tests-$name output"
    cat "$logs/$name.log"
    [ "$(cat "$logs/$name.rc" 2>/dev/null)" = 0 ] || failed+=("tests-$name")
done
rm -rf "$logs"

if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED steps: ${failed[*]}"
    exit 1
fi
echo "all checks passed"
