#!/usr/bin/env bash
# Training throughput of the x2 recipe on a GPU machine: lesrcnn-measure-training on BasicSR's
# options/train_lesrcnn_x2.yml and MMagic's configs/lesrcnn/lesrcnn_x2_div2k.py, each with the PNG
# store and the raw store, on generated DIV2K-like data (no download, nothing outside the repository
# and its .venv). Reports go to $OUT:
#   basicsr_x2.json / basicsr_x2.md   loader samples/s per worker count and storage, step ms per
#                                     setting (fp32/bf16/fp16, channels_last, compiled), real loop,
#                                     projection of the recipe's 600k iterations
#   mmagic_x2.json / mmagic_x2.md     the same for MMagic (fewer step settings, no compiling)
#   prepare.log, *.log                the data preparation and each run's progress
#
#   OUT=results/gpu bash tools/gpu_training_check.sh                    # CUDA; about 5 minutes, 6 at most
#   OUT=/tmp/check bash tools/gpu_training_check.sh --device cpu --quick  # that the script runs (tests)
#   OUT=results/cpu bash tools/gpu_training_check.sh --device cpu        # the CPU figures of docs/benchmarks.md
#
# Data: 32 photo-like 960x720 images (smooth colour fields of several scales plus fine texture, whose
# level-1 PNGs take 63 % of the raw size and decode as fast as a photograph's), cut by
# lesrcnn-prepare-div2k into 192 480x480 sub-images with x2 LR, as PNG and raw LMDBs, verified.
set -euo pipefail

DEVICE=cuda
QUICK=0
while [ $# -gt 0 ]; do
    case "$1" in
        --device) DEVICE="$2"; shift 2 ;;
        --quick) QUICK=1; shift ;;
        *) echo "usage: OUT=DIR $0 [--device cuda|cpu] [--quick]" >&2; exit 2 ;;
    esac
done
: "${OUT:?set OUT to the folder for the reports}"
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# The GPU runner allows 6 minutes: stop measuring in time to leave it $OUT. CPU runs take their time.
DEADLINE=$((SECONDS + 350))
[ "$DEVICE" = cpu ] && DEADLINE=$((SECONDS + 86400))

if [ "$QUICK" = 1 ]; then
    IMAGES=4
    COMMON=(--batch 2 --workers 1 --loader-batches 1 --iters 2 --step-rounds 1 --precisions fp32 --no-compile)
    MMAGIC=("${COMMON[@]}")
else
    IMAGES=32
    COMMON=()  # the tool's defaults for the device
    MMAGIC=(--workers 4 --precisions fp32 bf16 --no-compile)
    [ "$DEVICE" = cuda ] && MMAGIC+=(--iters 150)
fi

echo "[1/3] $IMAGES generated images -> PNG and raw LMDBs (x2)" >&2
"$PYTHON" - "$WORK/datasets/DIV2K/DIV2K_train_HR" "$IMAGES" <<'EOF'
import sys
from pathlib import Path

import cv2
import numpy as np

folder, count = Path(sys.argv[1]), int(sys.argv[2])
folder.mkdir(parents=True)
rng = np.random.default_rng(0)
for index in range(1, count + 1):
    image = np.zeros((720, 960, 3), np.float32)
    for sigma, amplitude in ((48, 50), (12, 25), (3, 12), (0.7, 6)):  # large fields to fine texture
        octave = cv2.GaussianBlur(rng.standard_normal(image.shape).astype(np.float32), (0, 0), sigma)
        image += amplitude * octave / octave.std()
    cv2.imwrite(str(folder / f'{index:04d}.png'), np.clip(image + 128, 0, 255).astype(np.uint8))
EOF
"$PYTHON" -m lesrcnn_plugin.cli.prepare_div2k --input "$WORK/datasets/DIV2K" --scales 2 --generate-lr \
    --storage raw --verify --workers "$(nproc)" > "$OUT/prepare.log" 2>&1

measure() {  # NAME SOURCE_FLAG SOURCE [tool options]: one report, within what is left of the deadline
    local name=$1 flag=$2 source=$3 left=$((DEADLINE - SECONDS))
    shift 3
    if [ "$left" -lt 30 ]; then
        echo "$name: skipped, the time is used up" | tee "$OUT/$name.skipped" >&2
        return 0
    fi
    (cd "$WORK" && timeout "$left" "$PYTHON" -m lesrcnn_plugin.cli.measure_training "$flag" "$REPO/$source" \
        --device "$DEVICE" --format json --output "$OUT/$name.json" "$@" > "$WORK/$name.out" 2> "$OUT/$name.log") || {
        echo "$name: failed or timed out (exit $?); see $OUT/$name.log" | tee "$OUT/$name.failed" >&2
        return 0
    }
    # The markdown report is the tool's standard output from its title on: mmengine's logger writes to
    # the standard output it found when it was created, before the tool could send it elsewhere.
    sed -n '/^### Training throughput/,$p' "$WORK/$name.out" > "$OUT/$name.md"
}
echo "[2/3] BasicSR x2 recipe on $DEVICE" >&2
measure basicsr_x2 -opt options/train_lesrcnn_x2.yml "${COMMON[@]}"
echo "[3/3] MMagic x2 config on $DEVICE" >&2
measure mmagic_x2 --config configs/lesrcnn/lesrcnn_x2_div2k.py "${MMAGIC[@]}"
ls -l "$OUT" >&2
