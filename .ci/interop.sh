#!/usr/bin/env bash
# The interop suite (tests/interop.rs): nwebsocket against servers no one here wrote. Installs
# every peer itself (Debian: nginx, tinyproxy, dante-server; PyPI: websockets; npm: ws, from
# tests/interop/node/package-lock.json), prints each one's version, then runs the ignored
# tests, which start each peer on 127.0.0.1 and stop it by PID. Needs root (apt-get, and the
# system account that dante's username method checks). Any install, start or test failure
# fails the script; nothing is skipped. Run from anywhere: `bash .ci/interop.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "Debian packages: nginx, tinyproxy, dante-server"
missing=()
command -v nginx >/dev/null || missing+=(nginx)
command -v tinyproxy >/dev/null || missing+=(tinyproxy)
command -v danted >/dev/null || missing+=(dante-server)
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

step "PyPI: websockets"
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    "websockets==17.4"

step "npm: ws (tests/interop/node, from its lock file)"
(cd tests/interop/node && npm ci --no-audit --no-fund --loglevel=error)

step "SOCKS5 test account (dante checks RFC 1929 credentials against system accounts)"
# Must match SOCKS_USER and SOCKS_PASSWORD in tests/interop.rs. No home, no login shell.
id -u nwsproxy >/dev/null 2>&1 ||
    useradd --system --no-create-home --shell /usr/sbin/nologin nwsproxy
echo 'nwsproxy:s3cret-pw' | chpasswd

step "peer versions"
nginx -v 2>&1
tinyproxy -v
danted -v 2>&1 | head -n 1
python3 -c 'import sys, websockets; print("Python", sys.version.split()[0], "websockets", websockets.__version__)'
node -e 'console.log("Node", process.version, "ws", require("./tests/interop/node/node_modules/ws/package.json").version)'

step "cargo test --test interop -- --ignored"
cargo test --test interop -- --ignored --test-threads=1

step "the OS verifier against nginx (feature platform-verifier)"
cargo test --features platform-verifier --test interop -- --ignored --test-threads=1 \
    nginx_tls_through_the_platform_verifier
