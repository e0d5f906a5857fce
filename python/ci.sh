#!/usr/bin/env bash
# The Python module's CI: lint the Rust side, build and install the package into a fresh venv
# exactly as a user would (`pip install ./python`), run pytest, execute the example notebook.
# Needs only Rust, Python 3.9+ with pip, and the package registries. Exits non-zero on any
# failure. The venv lives in python/.venv-ci (git-ignored) and is made anew each run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python3}"
venv="$here/.venv-ci"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check and clippy (python/)"
(cd "$here" && cargo fmt --check && nice -n 5 cargo clippy --all-targets --quiet -- -D warnings)

step "fresh venv in $venv"
rm -rf "$venv"
"$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check --no-input)

step "pip install ./python (builds the extension with maturin)"
nice -n 5 "${pip[@]}" install --quiet "$here"

step "test dependencies"
"${pip[@]}" install --quiet "pytest>=7" "websockets>=14" "trustme>=1" nbconvert ipykernel

step "pytest"
# From python/, where no `nwebsocket` folder shadows the installed package.
(cd "$here" && "$venv/bin/python" -m pytest tests -p no:cacheprovider -q)

step "the example notebook, executed by nbconvert"
"$venv/bin/python" -m jupyter nbconvert --to notebook --execute \
    --ExecutePreprocessor.timeout=120 \
    --output-dir "$scratch" "$here/examples/notebook.ipynb"

step "python/ci.sh passed"
