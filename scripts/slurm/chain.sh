#!/bin/bash
# Submit the whole pipeline as one dependency chain:
#   segment (job array) -> merge -> train (torchrun; GPUs or CPU) -> encode/umap/mmd + report
#
#   bash scripts/slurm/chain.sh [options] IN_DIR RUN_DIR CONFIG [N_TASKS]
#
# Every step is resumable: if one fails, fix the cause and run this script again; finished
# recordings, epochs and stages are not redone. RUN_DIR gets store/, model/, latents.csv,
# umap/, mmd/, report.html and logs/ (one log per job). Jobs that depend on a job that
# failed are cancelled by SLURM (--kill-on-invalid-dep), so nothing waits forever.
#
# Resources are yours to choose: every option below has an environment variable (the
# option wins); unset CPUs/memory/time keep the #SBATCH defaults of each script.
#   --tasks N            USVPIPE_TASKS         segmentation array tasks [20, or N_TASKS]
#   --partition P        USVPIPE_PARTITION     partition of every job [the cluster's default]
#   --account A          USVPIPE_ACCOUNT       account of every job
#   --gpus N             USVPIPE_GPUS          GPUs for training, one node; 0 = train on CPU [1]
#   --nproc N            USVPIPE_NPROC         training processes [the GPUs; 1 on CPU]
#   --analyse-gpus N     USVPIPE_ANALYSE_GPUS  GPUs for encode/umap/mmd [1 if --gpus > 0, else 0]
#   --segment-cpus N     USVPIPE_SEGMENT_CPUS  CPUs per array task [4]; also its --jobs
#   --segment-mem M      USVPIPE_SEGMENT_MEM   memory per array task [8G]
#   --segment-time T     USVPIPE_SEGMENT_TIME  time limit per array task [04:00:00]
#   --train-cpus/-mem/-time                    [8, 32G, 12:00:00]   (USVPIPE_TRAIN_CPUS, ...)
#   --analyse-cpus/-mem/-time                  [8, 32G, 02:00:00]   (USVPIPE_ANALYSE_CPUS, ...)
#   --python PATH        USVPIPE_PYTHON        interpreter with usvpipe [python3 on PATH]
#   --setup FILE         USVPIPE_SETUP         sourced first in every job (module load, conda activate)
#   --device D           USVPIPE_DEVICE        cpu|cuda|auto [cuda when the job has GPUs, else cpu]
#   --sbatch "ARGS"      USVPIPE_SBATCH_ARGS   extra sbatch options for every job, e.g. "--qos=long"
#                        USVPIPE_SEGMENT_SBATCH, USVPIPE_MERGE_SBATCH, USVPIPE_TRAIN_SBATCH,
#                        USVPIPE_ANALYSE_SBATCH: extra options for one stage, e.g. "--constraint=a100"
#   --export ALL|NONE    USVPIPE_EXPORT        pass this shell's environment to the jobs [ALL];
#                        with NONE only the USVPIPE_* settings travel (then use --setup)
#   --no-check           do not ask `sbatch --test-only` whether each request can ever run
#   --dry-run            check and print the sbatch commands, submit nothing
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { echo "chain.sh: $*" >&2; exit 2; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }

TASKS=${USVPIPE_TASKS:-}; PARTITION=${USVPIPE_PARTITION:-}; ACCOUNT=${USVPIPE_ACCOUNT:-}
GPUS=${USVPIPE_GPUS:-1}; NPROC=${USVPIPE_NPROC:-}; ANALYSE_GPUS=${USVPIPE_ANALYSE_GPUS:-}
SEG_CPUS=${USVPIPE_SEGMENT_CPUS:-}; SEG_MEM=${USVPIPE_SEGMENT_MEM:-}; SEG_TIME=${USVPIPE_SEGMENT_TIME:-}
TRAIN_CPUS=${USVPIPE_TRAIN_CPUS:-}; TRAIN_MEM=${USVPIPE_TRAIN_MEM:-}; TRAIN_TIME=${USVPIPE_TRAIN_TIME:-}
AN_CPUS=${USVPIPE_ANALYSE_CPUS:-}; AN_MEM=${USVPIPE_ANALYSE_MEM:-}; AN_TIME=${USVPIPE_ANALYSE_TIME:-}
PY=${USVPIPE_PYTHON:-}; SETUP=${USVPIPE_SETUP:-}; DEVICE=${USVPIPE_DEVICE:-}
SBATCH_ARGS=${USVPIPE_SBATCH_ARGS:-}; EXPORT=${USVPIPE_EXPORT:-ALL}; CHECK=1; DRY=0
POS=()
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage 0 ;;
    --tasks) TASKS=${2:?--tasks needs a value}; shift ;;
    --partition) PARTITION=${2:?}; shift ;;
    --account) ACCOUNT=${2:?}; shift ;;
    --gpus) GPUS=${2:?}; shift ;;
    --nproc) NPROC=${2:?}; shift ;;
    --analyse-gpus) ANALYSE_GPUS=${2:?}; shift ;;
    --segment-cpus) SEG_CPUS=${2:?}; shift ;;
    --segment-mem) SEG_MEM=${2:?}; shift ;;
    --segment-time) SEG_TIME=${2:?}; shift ;;
    --train-cpus) TRAIN_CPUS=${2:?}; shift ;;
    --train-mem) TRAIN_MEM=${2:?}; shift ;;
    --train-time) TRAIN_TIME=${2:?}; shift ;;
    --analyse-cpus) AN_CPUS=${2:?}; shift ;;
    --analyse-mem) AN_MEM=${2:?}; shift ;;
    --analyse-time) AN_TIME=${2:?}; shift ;;
    --python) PY=${2:?}; shift ;;
    --setup) SETUP=${2:?}; shift ;;
    --device) DEVICE=${2:?}; shift ;;
    --sbatch) SBATCH_ARGS=${2?}; shift ;;
    --export) EXPORT=${2:?}; shift ;;
    --no-check) CHECK=0 ;;
    --dry-run) DRY=1 ;;
    --) shift; POS+=("$@"); break ;;
    -*) die "unknown option $1 (see: bash $0 --help)" ;;
    *) POS+=("$1") ;;
  esac
  shift
done
[ ${#POS[@]} -ge 3 ] && [ ${#POS[@]} -le 4 ] || { echo "usage: chain.sh [options] IN_DIR RUN_DIR CONFIG [N_TASKS]  (--help for the options)" >&2; exit 2; }
[ ${#POS[@]} -eq 4 ] && TASKS=${POS[3]}
TASKS=${TASKS:-20}

isint() { case $2 in '' | *[!0-9]*) die "$1 must be a non-negative integer, got '$2'" ;; esac; }
isint --tasks "$TASKS"; [ "$TASKS" -ge 1 ] || die "--tasks must be >= 1"
isint --gpus "$GPUS"
[ -z "$NPROC" ] || { isint --nproc "$NPROC"; [ "$NPROC" -ge 1 ] || die "--nproc must be >= 1"; }
ANALYSE_GPUS=${ANALYSE_GPUS:-$([ "$GPUS" -gt 0 ] && echo 1 || echo 0)}
isint --analyse-gpus "$ANALYSE_GPUS"
for v in "$SEG_CPUS" "$TRAIN_CPUS" "$AN_CPUS"; do [ -z "$v" ] || isint "CPUs" "$v"; done
case $EXPORT in ALL | NONE) ;; *) die "--export must be ALL or NONE, got '$EXPORT'" ;; esac
command -v sbatch >/dev/null || die "sbatch not found (fix: run on a SLURM login node, or load the slurm module)"

# Absolute paths: the jobs run in RUN_DIR, not where this script was started.
abspath() { (cd "$(dirname "$1")" 2>/dev/null && echo "$(pwd)/$(basename "$1")") || die "$1: its folder does not exist"; }
IN_DIR=$(abspath "${POS[0]}"); [ -e "$IN_DIR" ] || die "$IN_DIR: no such file or folder (fix: the WAV folder, a WAV or a .txt list of WAVs)"
mkdir -p "${POS[1]}" || die "${POS[1]}: cannot create the run folder"
RUN_DIR=$(cd "${POS[1]}" && pwd)
CONFIG=$(abspath "${POS[2]}"); [ -r "$CONFIG" ] || die "$CONFIG: config not found (fix: create one with \`usvpipe init $CONFIG\`)"
[ -z "$SETUP" ] || { SETUP=$(abspath "$SETUP"); [ -r "$SETUP" ] || die "--setup $SETUP: not readable"; }
LOGS=$RUN_DIR/logs
mkdir -p "$LOGS"

# The Python the jobs will run: resolved now to an absolute path, checked now (and again in
# each job, whose node may differ), the config validated with it.
if [ -n "$SETUP" ]; then
  # shellcheck disable=SC1090
  PY=$(source "$SETUP" >/dev/null 2>&1; command -v "${PY:-python3}") || die "'${PY:-python3}' not found after sourcing $SETUP"
else
  PY=$(command -v "${PY:-python3}") || die "'${PY:-python3}' not found (fix: --python /path/to/venv/bin/python)"
fi
METADATA=$("$PY" -c 'import sys, usvpipe; print(usvpipe.read_pipeline_config(sys.argv[1]).run.metadata)' "$CONFIG" 2>&1) \
  || die "$PY: cannot import usvpipe or read $CONFIG: ${METADATA##*$'\n'} (fix: --python /path/to/venv/bin/python with usvpipe installed, or fix the config)"

for p in "$PY" "$HERE" "$SETUP" "$DEVICE" "$NPROC"; do
  case $p in *,*) die "'$p' contains a comma, which sbatch --export cannot pass (fix: a path without commas)" ;; esac
done
VARS="USVPIPE_PYTHON=$PY,USVPIPE_SLURM_DIR=$HERE,USVPIPE_TASKS=$TASKS"
[ -n "$SETUP" ] && VARS+=",USVPIPE_SETUP=$SETUP"
[ -n "$DEVICE" ] && VARS+=",USVPIPE_DEVICE=$DEVICE"
[ -n "$NPROC" ] && VARS+=",USVPIPE_NPROC=$NPROC"
[ "$EXPORT" = ALL ] && VARS="ALL,$VARS"

# shellcheck disable=SC2206  # word splitting of the free-form sbatch options is intended
COMMON=(--chdir "$RUN_DIR" --export "$VARS" ${PARTITION:+--partition "$PARTITION"} ${ACCOUNT:+--account "$ACCOUNT"} $SBATCH_ARGS)
res() {  # res CPUS MEM TIME GPUS -> sbatch options for the values that are set
  local out=()
  [ -n "$1" ] && out+=(--cpus-per-task "$1")
  [ -n "$2" ] && out+=(--mem "$2")
  [ -n "$3" ] && out+=(--time "$3")
  if [ -n "${4:-}" ] && [ "$4" -gt 0 ]; then out+=(--gpus-per-node "$4"); fi
  echo "${out[@]}"
}
SEG_RES=$(res "$SEG_CPUS" "$SEG_MEM" "$SEG_TIME")
TRAIN_RES=$(res "$TRAIN_CPUS" "$TRAIN_MEM" "$TRAIN_TIME" "$GPUS")
AN_RES=$(res "$AN_CPUS" "$AN_MEM" "$AN_TIME" "$ANALYSE_GPUS")
# shellcheck disable=SC2206  # word splitting intended: the values hold no spaces
SEG=(--array "0-$((TASKS - 1))" --output "$LOGS/%x-%A_%a.out" $SEG_RES ${USVPIPE_SEGMENT_SBATCH:-})
# shellcheck disable=SC2206
MERGE=(--output "$LOGS/%x-%j.out" ${USVPIPE_MERGE_SBATCH:-})
# shellcheck disable=SC2206
TRAIN=(--output "$LOGS/%x-%j.out" $TRAIN_RES ${USVPIPE_TRAIN_SBATCH:-})
# shellcheck disable=SC2206
ANALYSE=(--output "$LOGS/%x-%j.out" $AN_RES ${USVPIPE_ANALYSE_SBATCH:-})

SEG_OPTS=(); [ -n "$METADATA" ] && SEG_OPTS+=(--metadata "$METADATA")

# Ask the scheduler, before submitting anything, whether each request can ever run here: a
# job asking more CPUs, memory or GPUs than any node of the partition has would otherwise sit
# pending (reason PartitionConfig/Resources) and everything after it would wait forever.
if [ "$CHECK" = 1 ]; then
  for stage in segment merge train analyse; do
    case $stage in
      segment) opts=("${SEG[@]}"); script=segment_array.sbatch; asked="$SEG_RES ${USVPIPE_SEGMENT_SBATCH:-}"; fix="--segment-cpus/--segment-mem" ;;
      merge) opts=("${MERGE[@]}"); script=merge.sbatch; asked="${USVPIPE_MERGE_SBATCH:-}"; fix="USVPIPE_MERGE_SBATCH" ;;
      train) opts=("${TRAIN[@]}"); script=train_1node.sbatch; asked="$TRAIN_RES ${USVPIPE_TRAIN_SBATCH:-}"
             fix="--train-cpus/--train-mem"; [ "$GPUS" -eq 0 ] || fix+=", --gpus 0 to train on CPU" ;;
      analyse) opts=("${ANALYSE[@]}"); script=analyse.sbatch; asked="$AN_RES ${USVPIPE_ANALYSE_SBATCH:-}"
               fix="--analyse-cpus/--analyse-mem"; [ "$ANALYSE_GPUS" -eq 0 ] || fix+=", --analyse-gpus 0" ;;
    esac
    if ! msg=$(sbatch --test-only "${COMMON[@]}" "${opts[@]}" "$HERE/$script" 2>&1); then
      # what was asked: the script's #SBATCH defaults, then chain.sh's options (which win)
      defaults=$(sed -n 's/^#SBATCH --\(cpus-per-task\|mem\)=\(.*\)/\1=\2/p' "$HERE/$script" | xargs)
      asked=$(echo "$asked $SBATCH_ARGS" | xargs)
      die "the $stage job cannot run on this cluster as asked (defaults $defaults in $script${asked:+, then $asked}): ${msg//$'\n'/ } (fix: $fix, or --partition with bigger nodes)"
    fi
  done
fi

submit() {  # submit ARGS... -> job id
  if [ "$DRY" = 1 ]; then
    printf 'sbatch' >&2; printf ' %q' "$@" >&2; echo >&2
    echo "DRY$RANDOM"
    return
  fi
  local out
  out=$(sbatch --parsable "$@") || die "sbatch failed: sbatch $*"
  echo "${out%%;*}"  # "jobid;cluster" on multi-cluster sites
}
seg=$(submit "${COMMON[@]}" "${SEG[@]}" "$HERE/segment_array.sbatch" "$IN_DIR" "$RUN_DIR/store" "$CONFIG" "${SEG_OPTS[@]}")
# afterany: merge even if a few recordings failed, so the good ones are analysed; failed
# recordings are listed in $RUN_DIR/store/errors.csv and manifest.json.
merge=$(submit "${COMMON[@]}" "${MERGE[@]}" --dependency "afterany:$seg" --kill-on-invalid-dep=yes \
        "$HERE/merge.sbatch" "$RUN_DIR/store")
train=$(submit "${COMMON[@]}" "${TRAIN[@]}" --dependency "afterok:$merge" --kill-on-invalid-dep=yes \
        "$HERE/train_1node.sbatch" "$RUN_DIR/store" "$RUN_DIR/model" --config "$CONFIG")
analyse=$(submit "${COMMON[@]}" "${ANALYSE[@]}" --dependency "afterok:$train" --kill-on-invalid-dep=yes \
          "$HERE/analyse.sbatch" "$RUN_DIR" "$CONFIG")
echo "submitted: segment=$seg merge=$merge train=$train analyse=$analyse"
echo "  $TASKS segmentation task(s); training on $([ "$GPUS" -gt 0 ] && echo "$GPUS GPU(s)" || echo "CPU (${NPROC:-1} process(es))"); python $PY"
echo "  watch: squeue -j $seg,$merge,$train,$analyse    logs: $LOGS/    result: $RUN_DIR/report.html"
