#!/usr/bin/env bash
# `make setup`: build the verified BasicSR + MMagic stack in .venv (see README, "Installation").
#
# Environment:
#   PYTHON             interpreter for the virtual environment (default: python3; 3.11 verified)
#   VENV               where to create it (default: .venv at the repository root)
#   LESRCNN_WHEEL_DIR  a folder holding a prebuilt mmcv-2.1.0 wheel to seed the cache with
#   LESRCNN_CACHE_DIR  wheel cache (default: ${XDG_CACHE_HOME:-~/.cache}/lesrcnn-plugin)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
CONSTRAINTS=requirements/constraints.txt
MMCV_VERSION=2.1.0
TORCH_VERSION=$(sed -n 's/^torch==//p' "$CONSTRAINTS")
CACHE_DIR=${LESRCNN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lesrcnn-plugin}
STAMP="$VENV/.lesrcnn-setup"
STEP="start"

trap 'echo "make setup: FAILED at step \"$STEP\" (see the output above)" >&2' ERR
step() { STEP="$1"; echo "==> [setup] $1"; }
pip() { "$VENV/bin/python" -m pip "$@"; }
fingerprint() { cat "$CONSTRAINTS" setup.py tools/setup_env.sh | sha256sum | cut -d' ' -f1; }
imports_ok() {
    "$VENV/bin/python" - <<'PY' >/dev/null 2>&1
from lesrcnn_plugin.compat import install_torchvision_alias
install_torchvision_alias()
import basicsr, cv2, mmagic, mmagic.datasets, mmagic.models, mmcv.ops, lesrcnn_plugin
PY
}

if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(fingerprint)" ] && imports_ok; then
    echo "==> [setup] $VENV is up to date (delete $STAMP to force a reinstall)"
    exit 0
fi

step "create virtual environment $VENV"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PYTAG=$("$VENV/bin/python" -c 'import sys; print(f"cp{sys.version_info.major}{sys.version_info.minor}")')
WHEEL_CACHE="$CACHE_DIR/wheels/torch-$TORCH_VERSION-$PYTAG"
pip install -q --upgrade pip wheel

step "install torch $TORCH_VERSION and torchvision"
pip install -q -c "$CONSTRAINTS" torch torchvision

step "install build requirements (numpy, cython)"
pip install -q -c "$CONSTRAINTS" numpy cython "setuptools>=77"

step "install basicsr 1.4.2 (sdist, built against the installed torch)"
pip install -q -c "$CONSTRAINTS" --no-build-isolation basicsr

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
    STEP="build mmcv $MMCV_VERSION from its sdist (25-40 minutes on 2 cores, once; cached in $WHEEL_CACHE)"
    echo "==> [setup] $STEP"
    build=$(mktemp -d)
    restore_setuptools() { pip install -q -c "$CONSTRAINTS" "setuptools>=77" || true; rm -rf "$build"; }
    trap 'restore_setuptools; echo "make setup: FAILED at step \"$STEP\"" >&2' ERR
    pip download -q --no-deps --no-binary :all: "mmcv==$MMCV_VERSION" -d "$build"
    tar xzf "$build"/mmcv-$MMCV_VERSION.tar.gz -C "$build"
    # torch 2.14's headers need C++20; mmcv 2.1.0's setup.py hard-codes -std=c++17.
    sed -i 's/-std=c++17/-std=c++20/g' "$build/mmcv-$MMCV_VERSION/setup.py"
    # mmcv 2.1.0's setup.py needs the legacy setuptools API (< 70); torch itself wants >= 77, so
    # the old one is installed for the build only.
    pip install -q "setuptools<70"
    MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
        pip wheel --no-deps --no-build-isolation -w "$build/dist" "$build/mmcv-$MMCV_VERSION"
    built=$(ls "$build"/dist/mmcv-*.whl)
    cp "$built" "$WHEEL_CACHE/.$(basename "$built").tmp"
    mv "$WHEEL_CACHE/.$(basename "$built").tmp" "$WHEEL_CACHE/$(basename "$built")"
    wheel="$WHEEL_CACHE/$(basename "$built")"
    restore_setuptools
    trap 'echo "make setup: FAILED at step \"$STEP\" (see the output above)" >&2' ERR
fi

step "install mmcv from $wheel, mmengine, mmagic and pinned companions"
pip install -q -c "$CONSTRAINTS" "$wheel" mmengine mmagic opencv-python opencv-python-headless opencv-contrib-python

step "install lesrcnn-plugin (editable) with its extras"
pip install -q -c "$CONSTRAINTS" --no-build-isolation -e ".[all,dev]"

step "check imports (basicsr, mmagic, mmcv.ops, cv2)"
if ! imports_ok; then
    "$VENV/bin/python" -c 'from lesrcnn_plugin.compat import install_torchvision_alias; install_torchvision_alias(); import basicsr, cv2, mmagic, mmagic.datasets, mmagic.models, mmcv.ops' || true
    echo "make setup: the imports fail; if mmcv.ops is the culprit, delete $WHEEL_CACHE and rerun" >&2
    exit 1
fi
fingerprint > "$STAMP"
echo "==> [setup] ready: $VENV"
