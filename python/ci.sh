#!/usr/bin/env bash
# The Python module's CI: lint the Rust side, build and install the package into a fresh venv
# exactly as a user would (`pip install ./python`), run pytest, execute the example notebook.
# Needs only Rust (rustup or cargo), Python 3.9+, and the package registries; installs the rest
# (rustfmt and clippy through rustup, python3-venv through apt-get when the interpreter cannot
# make a venv, as on a bare Debian). Exits non-zero on any failure. The venv lives in
# python/.venv-ci (git-ignored) and is made anew each run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python3}"
venv="$here/.venv-ci"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check and clippy (python/)"
if ! { cargo fmt --version && cargo clippy --version; } >/dev/null 2>&1; then
    rustup component add rustfmt clippy
fi
(cd "$here" && cargo fmt --check && nice -n 5 cargo clippy --all-targets --quiet -- -D warnings)

step "fresh venv in $venv"
rm -rf "$venv"
if ! "$python" -m venv "$venv" 2>"$scratch/venv.err"; then
    # Debian's python3 leaves venv (ensurepip) to the python3-venv package.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        rm -rf "$venv"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
        "$python" -m venv "$venv"
    else
        cat "$scratch/venv.err" >&2
        echo "cannot make a venv: install python3-venv (or run as root with apt-get)" >&2
        exit 1
    fi
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check --no-input)

step "pip install ./python (builds the extension with maturin)"
nice -n 5 "${pip[@]}" install --quiet "$here"

step "test dependencies"
"${pip[@]}" install --quiet "pytest>=7" "websockets>=14" "trustme>=1" nbconvert ipykernel "mypy>=1.10"

step "types: mypy --strict on the examples and the typed sample, stubtest against the runtime"
# From python/, where no `nwebsocket` folder shadows the installed package: mypy reads the
# installed stubs (py.typed), as it would in a user's project.
(cd "$here" && "$venv/bin/python" -m mypy --strict --no-incremental examples/*.py tests/typed_sample.py)
(cd "$scratch" && "$venv/bin/python" -m mypy.stubtest nwebsocket)

step "pytest"
# From python/, where no `nwebsocket` folder shadows the installed package.
(cd "$here" && "$venv/bin/python" -m pytest tests -p no:cacheprovider -q)

step "the example notebook, executed by nbconvert"
"$venv/bin/python" -m jupyter nbconvert --to notebook --execute \
    --ExecutePreprocessor.timeout=120 \
    --output-dir "$scratch" "$here/examples/notebook.ipynb"

step "python/ci.sh passed"
