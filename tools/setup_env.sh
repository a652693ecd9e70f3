#!/usr/bin/env bash
# Build the verified environment in .venv (see README, "Installation"). One virtual environment, in
# two stages, each idempotent:
#
#   tools/setup_env.sh core              torch + torchvision, basicsr, the plugin and what `make demo`
#                                        needs (`make setup-core`, which `make demo` runs)
#   tools/setup_env.sh full              core, then the MMagic stack: mmcv 2.1.0 with compiled ops
#                                        (a cached wheel, or built from its sdist once), mmengine,
#                                        mmagic, and the test tools (`make setup`, which `make test` runs)
#   tools/setup_env.sh check-mmcv-build  download mmcv's sdist, patch it and prepare its metadata with the
#                                        build-only setuptools, stopping before compiling (about a minute;
#                                        CI runs it so that the sdist path cannot rot unseen)
#
# Environment:
#   PYTHON             interpreter for the virtual environment (default: python3; 3.11 verified)
#   VENV               where to create it (default: .venv at the repository root)
#   LESRCNN_WHEEL_DIR  a folder holding a prebuilt mmcv-2.1.0 wheel to seed the cache with
#   LESRCNN_CACHE_DIR  wheel cache (default: ${XDG_CACHE_HOME:-~/.cache}/lesrcnn-plugin)
#   MAX_JOBS           compiler jobs for the mmcv build (default: the number of cores)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TARGET=${1:-full}
case "$TARGET" in core|full|check-mmcv-build) ;; *)
    echo "usage: tools/setup_env.sh [core|full|check-mmcv-build]" >&2; exit 2 ;;
esac
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
case "$VENV" in /*) ;; *) VENV="$PWD/$VENV" ;; esac  # absolute: some steps run in other folders
CONSTRAINTS=requirements/constraints.txt
MMCV_VERSION=2.1.0
# mmcv 2.1.0's setup.py imports pkg_resources and the legacy setuptools API, gone from setuptools >= 70
# (and pkg_resources from the newest releases altogether); torch itself needs setuptools >= 77. So the
# old setuptools is installed into a folder of its own and put first on PYTHONPATH for mmcv's steps
# only: the environment's own setuptools is never downgraded.
MMCV_SETUPTOOLS='setuptools<70'
TORCH_VERSION=$(sed -n 's/^torch==//p' "$CONSTRAINTS")
CACHE_DIR=${LESRCNN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lesrcnn-plugin}
STEP="start"
SCRATCH=""

# An EXIT trap, not an ERR trap: ERR is not inherited by shell functions (pip below is one), so a
# failure inside one would exit silently.
on_exit() {
    local status=$?
    [ -n "$SCRATCH" ] && rm -rf "$SCRATCH"
    if [ "$status" -ne 0 ]; then
        echo "make setup: FAILED at step \"$STEP\" (exit $status; see the output above)" >&2
    fi
}
trap on_exit EXIT
step() { STEP="$1"; echo "==> [setup $TARGET] $1"; }
pip() { "$VENV/bin/python" -m pip "$@"; }
fingerprint() { cat "$CONSTRAINTS" setup.py tools/setup_env.sh | sha256sum | cut -d' ' -f1; }
imports_ok() {  # imports_ok MODULE...: the plugin's compat alias first, as basicsr needs it
    "$VENV/bin/python" - "$@" <<'PY'
import importlib, sys
from lesrcnn_plugin.compat import install_torchvision_alias
install_torchvision_alias()
for name in sys.argv[1:]:
    importlib.import_module(name)
PY
}
CORE_IMPORTS=(lesrcnn_plugin basicsr cv2 lmdb skimage yaml)
FULL_IMPORTS=("${CORE_IMPORTS[@]}" mmagic mmagic.datasets mmagic.models mmcv.ops mmengine pytest importlinter onnxruntime spandrel)
stamp() { echo "$VENV/.lesrcnn-setup-$1"; }
ready() {  # ready core|full: stamp current and the imports work
    [ -x "$VENV/bin/python" ] && [ -f "$(stamp "$1")" ] && [ "$(cat "$(stamp "$1")")" = "$(fingerprint)" ] || return 1
    if [ "$1" = core ]; then imports_ok "${CORE_IMPORTS[@]}" >/dev/null 2>&1; else imports_ok "${FULL_IMPORTS[@]}" >/dev/null 2>&1; fi
}

mmcv_scratch() {  # a scratch folder with mmcv's build-only setuptools in $SCRATCH/setuptools
    SCRATCH=$(mktemp -d)
    # --no-warn-conflicts: torch's setuptools>=77 requirement concerns the environment, not this folder.
    pip install -q --no-warn-conflicts --target "$SCRATCH/setuptools" "$MMCV_SETUPTOOLS"
}
mmcv_fetch_and_patch() {  # the sdist, unpacked and patched, in $SCRATCH/mmcv-$MMCV_VERSION
    # --no-build-isolation: pip prepares the sdist's metadata with the build-only setuptools above
    # (an isolated build gets the newest setuptools, whose lack of pkg_resources breaks mmcv's setup.py).
    PYTHONPATH="$SCRATCH/setuptools" pip download -q --no-deps --no-binary :all: --no-build-isolation \
        "mmcv==$MMCV_VERSION" -d "$SCRATCH"
    tar xzf "$SCRATCH/mmcv-$MMCV_VERSION.tar.gz" -C "$SCRATCH"
    # torch 2.14's headers need C++20; mmcv 2.1.0's setup.py hard-codes -std=c++17.
    sed -i 's/-std=c++17/-std=c++20/g' "$SCRATCH/mmcv-$MMCV_VERSION/setup.py"
    if ! grep -q -- '-std=c++20' "$SCRATCH/mmcv-$MMCV_VERSION/setup.py"; then
        echo "mmcv $MMCV_VERSION's setup.py no longer sets -std=c++17: the C++20 patch did not apply" >&2
        return 1
    fi
}
mmcv_env() { env PYTHONPATH="$SCRATCH/setuptools" MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="${MAX_JOBS:-$(nproc)}" "$@"; }

# ------------------------------------------------------------------------------ check-mmcv-build
if [ "$TARGET" = check-mmcv-build ]; then
    if [ ! -x "$VENV/bin/python" ]; then
        echo "check-mmcv-build: $VENV does not exist; run 'make setup-core' first" >&2; exit 1
    fi
    step "download mmcv $MMCV_VERSION's sdist with $MMCV_SETUPTOOLS (build-only) and apply the C++20 patch"
    mmcv_scratch
    mmcv_fetch_and_patch
    step "prepare the patched sdist's metadata and extension list (compiled ops, C++20), without compiling"
    # egg_info runs setup.py whole: it imports pkg_resources and builds the extension list with
    # torch.utils.cpp_extension, the parts of the build that broke before; only compiling is left out.
    (cd "$SCRATCH/mmcv-$MMCV_VERSION" && mmcv_env "$VENV/bin/python" setup.py -q egg_info --egg-base "$SCRATCH")
    version=$(sed -n 's/^Version: //p' "$SCRATCH"/mmcv.egg-info/PKG-INFO)
    [ "$version" = "$MMCV_VERSION" ] || { echo "prepared metadata says mmcv $version" >&2; exit 1; }
    step "ok: mmcv $MMCV_VERSION's sdist downloads, patches and prepares (compiling skipped)"
    exit 0
fi

# ------------------------------------------------------------------------------------------ core
if ready core; then
    echo "==> [setup $TARGET] the core stage of $VENV is up to date (delete $(stamp core) to force it)"
else
    step "create virtual environment $VENV"
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    pip install -q --upgrade pip wheel

    step "install torch $TORCH_VERSION and torchvision"
    pip install -q -c "$CONSTRAINTS" torch torchvision

    step "install build requirements (numpy, cython)"
    pip install -q -c "$CONSTRAINTS" numpy cython "setuptools>=77"

    step "install basicsr 1.4.2 (sdist, built against the installed torch)"
    pip install -q -c "$CONSTRAINTS" --no-build-isolation basicsr

    step "install lesrcnn-plugin (editable) with the basicsr and demo extras"
    pip install -q -c "$CONSTRAINTS" --no-build-isolation -e ".[basicsr,demo]"

    step "check the core imports (${CORE_IMPORTS[*]})"
    imports_ok "${CORE_IMPORTS[@]}"
    fingerprint > "$(stamp core)"
fi
if [ "$TARGET" = core ]; then
    echo "==> [setup core] ready: $VENV (torch, basicsr, the plugin; 'make setup' adds the MMagic stack)"
    exit 0
fi

# ------------------------------------------------------------------------------------------ full
if ready full; then
    echo "==> [setup full] $VENV is up to date (delete $(stamp full) to force a reinstall)"
    exit 0
fi
PYTAG=$("$VENV/bin/python" -c 'import sys; print(f"cp{sys.version_info.major}{sys.version_info.minor}")')
WHEEL_CACHE="$CACHE_DIR/wheels/torch-$TORCH_VERSION-$PYTAG"

step "provide an mmcv $MMCV_VERSION wheel with compiled ops"
mkdir -p "$WHEEL_CACHE"
wheel=$(ls "$WHEEL_CACHE"/mmcv-$MMCV_VERSION-$PYTAG-*.whl 2>/dev/null | head -n1 || true)
if [ -z "$wheel" ] && [ -n "${LESRCNN_WHEEL_DIR:-}" ]; then
    seed=$(ls "$LESRCNN_WHEEL_DIR"/mmcv-$MMCV_VERSION-$PYTAG-*.whl 2>/dev/null | head -n1 || true)
    if [ -n "$seed" ]; then
        echo "    seeding the cache from $seed"
        cp "$seed" "$WHEEL_CACHE/.$(basename "$seed").tmp"
        mv "$WHEEL_CACHE/.$(basename "$seed").tmp" "$WHEEL_CACHE/$(basename "$seed")"
        wheel="$WHEEL_CACHE/$(basename "$seed")"
    else
        echo "    no mmcv-$MMCV_VERSION-$PYTAG wheel in LESRCNN_WHEEL_DIR=$LESRCNN_WHEEL_DIR"
    fi
fi
if [ -z "$wheel" ]; then
    step "download and patch mmcv $MMCV_VERSION's sdist"
    mmcv_scratch
    mmcv_fetch_and_patch
    step "build mmcv $MMCV_VERSION from its sdist (25-40 minutes on 2 cores, once; cached in $WHEEL_CACHE)"
    mmcv_env "$VENV/bin/python" -m pip wheel --no-deps --no-build-isolation -w "$SCRATCH/dist" \
        "$SCRATCH/mmcv-$MMCV_VERSION"
    built=$(ls "$SCRATCH"/dist/mmcv-*.whl)
    cp "$built" "$WHEEL_CACHE/.$(basename "$built").tmp"
    mv "$WHEEL_CACHE/.$(basename "$built").tmp" "$WHEEL_CACHE/$(basename "$built")"
    wheel="$WHEEL_CACHE/$(basename "$built")"
fi

step "install mmcv from $wheel, mmengine, mmagic, OpenMMLab's launcher (mim) and pinned companions"
pip install -q -c "$CONSTRAINTS" "$wheel" mmengine mmagic openmim opencv-python opencv-python-headless opencv-contrib-python

step "install lesrcnn-plugin (editable) with all its extras and the test tools"
pip install -q -c "$CONSTRAINTS" --no-build-isolation -e ".[all,dev]"

step "check the imports (${FULL_IMPORTS[*]})"
if ! imports_ok "${FULL_IMPORTS[@]}"; then
    echo "make setup: the imports fail; if mmcv.ops is the culprit, delete $WHEEL_CACHE and rerun" >&2
    exit 1
fi
fingerprint > "$(stamp core)"
fingerprint > "$(stamp full)"
echo "==> [setup full] ready: $VENV"
