#!/usr/bin/env bash
# The GPU checks a lent device machine should run, as one prepared command (issue 18's GPU clause:
# the 128x128 default on the real store and on 100k synthetic syllables, R² and epoch time; the VAE
# tests on CUDA; the training and MMD benchmarks on CUDA).
#
# A drawn session has about 15 minutes of device time in all, a fresh machine has no network and
# lacks a few of our dependencies, and ../shared is not sent. So the work is split:
#
#   here, once (CPU, network):  bash scripts/device_check.sh --prepare
#       segments the real recordings in ../shared/data with the defaults into .device_carry/real/store
#       (derived syllable images, not the recordings) and downloads the wheels the device image lacks
#       into .device_carry/whl (both ignored by git; together about 4 MiB).
#   there (the `run` tool):     command="bash scripts/device_check.sh", carry=[".device_carry"], timeout_s=590
#       writes every log and JSON under $OUT (device_check.log, real.json, synth100k.txt, ...).
#   here, to try the plumbing:  bash scripts/device_check.sh --smoke
#       the same steps, tiny and on the CPU (no GPU needed; about a minute on 2 cores).
#
# Each step has its own time limit, so one slow step cannot cost the others their results; the
# limits add up to 540 s, inside one 600 s call.
set -uo pipefail
cd "$(dirname "$0")/.."
CARRY=.device_carry
MODE=${1:-device}

if [ "$MODE" = "--prepare" ]; then
    set -e
    PY=${PYTHON:-.venv/bin/python}
    mkdir -p "$CARRY/real" "$CARRY/whl"
    if [ ! -f "$CARRY/real/store/syllables.csv" ]; then
        [ -d ../shared/data ] || { echo "device_check: ../shared/data not found (fix: run --prepare from a checkout beside shared/)"; exit 2; }
        "$PY" - <<'EOF'
from pathlib import Path
from usvpipe.segmentation.batch import segment_recordings
segment_recordings(sorted(Path("../shared/data").rglob("*.wav")), Path(".device_carry/real/store"), progress=False)
EOF
    fi
    # not in the device image (its KINDS.md list): the audio readers the test suite imports
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$CARRY/whl" soundfile cffi pycparser
    du -sh "$CARRY"
    exit 0
fi

OUT=${OUT:-/tmp/device_check_out}
mkdir -p "$OUT"
LOG="$OUT/device_check.log"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" MPLBACKEND=Agg
if [ "$MODE" = "--smoke" ]; then
    PY=${PYTHON:-.venv/bin/python}; DEV=cpu
    REAL_ARGS=(--seeds 1 --set min_steps=30 --set epochs=3 --set profile=cpu); SYN_ARGS=(--size 32 --n 600 --epochs 2 --latent-dim 8)
    TRAIN_ARGS=(--n 512 --size 32 --epochs 2 --rounds 1 --variants usvpipe,plain); MMD_ARGS=(--n 300 --permutations 200 --peers "" --agree-n 100)
    TESTS=(tests/test_device.py)
    WORK=$(mktemp -d); cp -r "$CARRY/real/store" "$WORK/store" 2>/dev/null || true
else
    PY=${PYTHON:-python3}; DEV=cuda
    REAL_ARGS=(--seeds 3); SYN_ARGS=(--size 128 --n 100000 --epochs 10 --obs-precision auto --min-steps 2000 --batch-size 256)
    TRAIN_ARGS=(--n 20000 --size 128 --epochs 3 --rounds 2); MMD_ARGS=(--n 2000 --peers "" --big 20000)
    TESTS=(tests/test_device.py tests/test_vae.py tests/test_vae_health.py tests/test_vae_readout.py)
    WORK="$CARRY/real"
    if ls "$CARRY"/whl/*.whl >/dev/null 2>&1; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$CARRY"/whl/*.whl \
            && export PYTHONPATH="$PYTHONPATH:/tmp/site"
    fi
fi

step() {  # step NAME LIMIT_S CMD...: run with a time limit, log it, keep going whatever it returns
    local name=$1 limit=$2; shift 2
    echo "== $name (limit ${limit} s; load $(cut -d' ' -f1-3 /proc/loadavg)) $(date -u +%H:%M:%S)" | tee -a "$LOG"
    local t0=$SECONDS
    timeout "$limit" "$@" > "$OUT/$name.txt" 2>&1
    local rc=$?
    tail -n 25 "$OUT/$name.txt" | tee -a "$LOG"
    echo "== $name: rc $rc after $((SECONDS - t0)) s" | tee -a "$LOG"
}

{ nvidia-smi -L 2>&1 || echo "no nvidia-smi"; "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"; nproc; } > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt" | tee -a "$LOG"
step tests 120 "$PY" -m pytest -q -x -p no:cacheprovider "${TESTS[@]}"
step real 120 "$PY" scripts/vae_real_benchmark.py --device "$DEV" --work "$WORK" --json "$OUT/real.json" "${REAL_ARGS[@]}"
step synth100k 200 "$PY" scripts/vae_synthetic_r2.py --device "$DEV" "${SYN_ARGS[@]}"
step bench_train 60 "$PY" scripts/bench/train.py --device "$DEV" "${TRAIN_ARGS[@]}"
step bench_mmd 40 "$PY" scripts/bench/mmd.py --device "$DEV" "${MMD_ARGS[@]}"
echo "device_check: logs in $OUT" | tee -a "$LOG"
