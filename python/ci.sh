#!/usr/bin/env bash
# The Python module's CI: lint the Rust side; build the sdist, and from it the manylinux abi3
# wheel (maturin with zig, no Docker), once; check the wheel's tag; install that wheel into a
# fresh venv on a PATH with no cargo, as a user without Rust would; run pytest, the type checks
# (mypy --strict, stubtest) and the example notebook against it.
# Needs only Rust (rustup or cargo), Python 3.9+, and the package registries; installs the rest
# (rustfmt and clippy through rustup, python3-venv through apt-get when the interpreter cannot
# make a venv, as on a bare Debian; maturin, ziglang and auditwheel through pip). Exits
# non-zero on any failure. The venvs live in python/.venv-build and python/.venv-ci
# (git-ignored) and are made anew each run; the build reuses the workspace's target/.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
python="${PYTHON:-python3}"
venv="$here/.venv-ci"
tools="$here/.venv-build"
target="${CARGO_TARGET_DIR:-$repo/target}"
scratch="$(mktemp -d)"
dist="$scratch/dist"
trap 'rm -rf "$scratch"' EXIT

step() { printf '\n==> %s\n' "$*"; }

# A fresh venv at $1 (Debian's python3 leaves venv, ensurepip, to the python3-venv package).
fresh_venv() {
    rm -rf "$1"
    if ! "$python" -m venv "$1" 2>"$scratch/venv.err"; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            rm -rf "$1"
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
            "$python" -m venv "$1"
        else
            cat "$scratch/venv.err" >&2
            echo "cannot make a venv: install python3-venv (or run as root with apt-get)" >&2
            exit 1
        fi
    fi
}

step "cargo fmt --check and clippy (python/)"
if ! { cargo fmt --version && cargo clippy --version; } >/dev/null 2>&1; then
    rustup component add rustfmt clippy
fi
(cd "$here" && cargo fmt --check && nice -n 5 cargo clippy --all-targets --quiet -- -D warnings)

step "cargo check for free-threaded CPython 3.14t (its ABI, from a PyO3 config file: no interpreter needed)"
# No free-threaded interpreter installs from the registries this runs with (see the README);
# this at least compiles the module against that ABI, where PyO3 drops the abi3 feature and
# the GIL-only APIs.
printf '%s\n' implementation=CPython version=3.14 shared=true abi3=false \
    build_flags=Py_GIL_DISABLED suppress_build_script_link_lines=true >"$scratch/pyo3-314t.txt"
(cd "$here" && PYO3_CONFIG_FILE="$scratch/pyo3-314t.txt" CARGO_TARGET_DIR="$target/free-threaded" \
    nice -n 5 cargo check --quiet)
cat "$target"/free-threaded/debug/build/pyo3-ffi-*/output | grep -qx 'cargo:rustc-cfg=Py_GIL_DISABLED' ||
    { echo "PyO3 was not configured for the free-threaded ABI" >&2; exit 1; }

step "build tools in $tools: maturin, ziglang (the linker for glibc 2.17), auditwheel"
fresh_venv "$tools"
"$tools/bin/python" -m pip --disable-pip-version-check --no-input install --quiet \
    "maturin>=1.5,<2" ziglang auditwheel

step "sdist: maturin sdist, without the crate's benches/ and .ci/"
# (Without cargo's advice on package metadata; sed, unlike grep, succeeds on no output.)
(cd "$here" && "$tools/bin/maturin" sdist --out "$dist" 2>&1 | sed '/^warning: manifest has no/,/^  = note/d')
sdist=$(ls "$dist"/*.tar.gz)
tar tzf "$sdist" >"$scratch/sdist.list"
if grep -E '^[^/]+/(benches|\.ci)/' "$scratch/sdist.list"; then
    echo "the sdist holds the crate's benches or .ci (above)" >&2
    exit 1
fi
for needed in Cargo.lock python/Cargo.toml python/src/lib.rs src/lib.rs pysrc/nwebsocket/py.typed; do
    grep -qx "[^/]*/$needed" "$scratch/sdist.list" || { echo "the sdist lacks $needed" >&2; exit 1; }
done
echo "$(basename "$sdist"): $(wc -l <"$scratch/sdist.list") files"

step "wheel, built from the sdist: maturin build --release --zig --compatibility manylinux2014"
# Unpacked under target/, so that the dependencies compiled by earlier runs are reused. The
# sdist stamps every file with one fixed time: unpacked with the time of now instead (-m), so
# that cargo always recompiles the sdist's two crates rather than trust an older build.
unpacked="$target/python-sdist"
rm -rf "$unpacked" && mkdir -p "$unpacked"
tar xzmf "$sdist" -C "$unpacked" --strip-components=1
started=$SECONDS
(cd "$unpacked" && PATH="$tools/bin:$PATH" CARGO_TARGET_DIR="$target" nice -n 5 \
    "$tools/bin/maturin" build --release --zig --compatibility manylinux2014 --out "$dist" \
    --interpreter "$tools/bin/python" 2>&1 | sed '/^ *Compiling /d')
wheel=$(ls "$dist"/*.whl 2>/dev/null || true)
[ -n "$wheel" ] || { echo "maturin built no wheel" >&2; exit 1; }
echo "built $(basename "$wheel") in $((SECONDS - started)) s"

step "the wheel's tag: abi3, manylinux 2.17"
case "$(basename "$wheel")" in
*-cp39-abi3-*manylinux_2_17_"$(uname -m)".whl) ;;
*) echo "unexpected wheel tag: $(basename "$wheel")" >&2; exit 1 ;;
esac
"$tools/bin/auditwheel" show "$wheel" | tee "$scratch/auditwheel.txt"
grep -q '"manylinux_2_17_'"$(uname -m)"'"' "$scratch/auditwheel.txt" ||
    { echo "auditwheel does not find the wheel consistent with manylinux_2_17" >&2; exit 1; }

step "fresh venv in $venv, on a PATH with no cargo or rustc: install the wheel"
no_rust_path=""
IFS=: read -ra path_dirs <<<"$PATH"
for dir in "${path_dirs[@]}"; do
    if [ -e "$dir/cargo" ] || [ -e "$dir/rustc" ]; then
        continue
    fi
    no_rust_path="${no_rust_path:+$no_rust_path:}$dir"
done
fresh_venv "$venv"
export PATH="$venv/bin:$no_rust_path"
if command -v cargo >/dev/null || command -v rustc >/dev/null; then
    echo "cargo is still on the PATH" >&2
    exit 1
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check --no-input)
started=$SECONDS
"${pip[@]}" install --quiet "$wheel"
echo "installed the wheel in $((SECONDS - started)) s"
(cd "$scratch" && "$venv/bin/python" -c '
import nwebsocket, sys
assert nwebsocket.__file__.startswith(sys.prefix), nwebsocket.__file__
print("nwebsocket from", nwebsocket.__file__)')

step "test dependencies"
"${pip[@]}" install --quiet "pytest>=7" "websockets>=14" "trustme>=1" nbconvert ipykernel "mypy>=1.10"

step "pytest, against the installed wheel"
# From python/, where no `nwebsocket` folder shadows the installed package.
(cd "$here" && "$venv/bin/python" -m pytest tests -p no:cacheprovider -q)

step "types: mypy --strict on the examples and the typed sample, stubtest against the wheel"
# mypy reads the installed package's stubs (py.typed), as it would in a user's project.
(cd "$here" && "$venv/bin/python" -m mypy --strict --no-incremental examples/*.py tests/typed_sample.py)
(cd "$scratch" && "$venv/bin/python" -m mypy.stubtest nwebsocket)

step "the example notebook, executed by nbconvert"
"$venv/bin/python" -m jupyter nbconvert --to notebook --execute \
    --ExecutePreprocessor.timeout=120 \
    --output-dir "$scratch" "$here/examples/notebook.ipynb"

step "python/ci.sh passed"
