#!/bin/bash
# A real full disk under `usvpipe segment` (--jobs 1 and 2) and `usvpipe train` (issue 40, items 10-11).
#
#   sudo bash scripts/disk_full_check.sh            (root: mounts a small tmpfs; ~1-2 minutes)
#
# Mounts a tmpfs under a temporary folder, segments a small synthetic dataset into it and fills
# the rest of it as soon as the first shard appears; then trains into a tmpfs left with too little
# room for a second checkpoint. Prints each command's exit status and how many lines it printed:
# expected 2 and 1 (one "no space left on device" line), never 139 or a traceback. Unmounts on exit.
# USVPIPE_PYTHON: the interpreter with usvpipe's dependencies (default python3).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${USVPIPE_PYTHON:-python3}
export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH} OMP_NUM_THREADS=1 MPLBACKEND=Agg
W=$(mktemp -d)
MNT=$W/full
mkdir -p "$MNT"
cleanup() { mountpoint -q "$MNT" && umount "$MNT"; rm -rf "$W"; }
trap cleanup EXIT
"$PY" -m usvpipe synth "$W/data" --animals-per-group 4 --duration-s 6 --seed 1 >/dev/null
find "$W/data" -name '*.csv' -delete

mount -t tmpfs -o size=80m tmpfs "$MNT"
for jobs in 1 2; do
  rm -rf "$MNT"/*
  "$PY" -m usvpipe segment "$W/data" "$MNT/store" --jobs $jobs --no-progress >"$W/seg$jobs.txt" 2>&1 &
  pid=$!
  for _ in $(seq 600); do ls "$MNT"/store/shards/*.h5 >/dev/null 2>&1 && break; sleep 0.1; done
  fallocate -l $(( $(df --output=avail -B1 "$MNT" | tail -1) - 4096 )) "$MNT/filler" || true
  rc=0; wait $pid || rc=$?
  echo "segment --jobs $jobs: exit $rc, $(wc -l <"$W/seg$jobs.txt") line(s): $(tail -n 1 "$W/seg$jobs.txt" | cut -c1-200)"
done
umount "$MNT"

"$PY" -m usvpipe segment "$W/data" "$W/store" --no-progress >/dev/null
mount -t tmpfs -o size=200m tmpfs "$MNT"
fallocate -l 134M "$MNT/filler"  # 66 MiB left: one 39 MB checkpoint fits, a second beside it does not
printf '[train]\ncheckpoint_min_interval_s = 0\n' >"$W/train.toml"
rc=0; "$PY" -m usvpipe train "$W/store" "$MNT/run" --epochs 30 --latent-dim 4 --batch-size 16 --device cpu \
  --no-progress --config "$W/train.toml" --set hidden=2048,256 >"$W/train.txt" 2>&1 || rc=$?
echo "train: exit $rc, last line: $(tail -n 1 "$W/train.txt" | cut -c1-200)"
"$PY" -c 'import sys; from usvpipe.vae.checkpoint import load_checkpoint; print("train: checkpoint intact, epoch", load_checkpoint(sys.argv[1])["epoch"])' "$MNT/run/checkpoint.pt"
