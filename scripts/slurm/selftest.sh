#!/bin/bash
# Self-test of the SLURM scripts on a real, private, one-node SLURM cluster on this machine.
#
#   sudo bash scripts/slurm/selftest.sh [WORK_DIR]        (as root; ~2-4 minutes on 2 cores)
#
# 1. installs Debian's slurm-wlm and munge if missing (apt-get);
# 2. writes a one-node slurm.conf for this machine (CPUs and memory from `slurmd -C`),
#    with its own munge key and socket, ports, spool and state folders under WORK_DIR, so
#    nothing of a system SLURM/munge is used or touched;
# 3. starts munged, slurmctld and slurmd, and stops them by their pid files when it ends,
#    also on failure or Ctrl-C;
# 4. makes a tiny synthetic dataset (`usvpipe synth`) and a fast config, and
#    - submits chain.sh (4 array tasks, CPU-only: --gpus 0) and checks that every stage ran
#      after the one it depends on and completed;
#    - runs `usvpipe run` locally on the same data and checks that the store is identical,
#      the latents agree within LATENT_ATOL and the MMD p-value is the same;
#    - signals the chain's training job as SLURM does before the time limit (USR1) and checks
#      that it requeued itself and resumed from its checkpoint (its latents are still compared
#      with the uninterrupted local run's); the first attempt holds after its first checkpoint
#      (scripts/slurm/selftest_hold) until the requeue stops it, so the check does not depend
#      on how fast the machine trains;
#    - cancels a segmentation array task mid-run (scancel), resubmits that task alone and
#      checks that it processed only the recordings the cancelled attempt had not finished,
#      and that the store it completes equals the local one;
#    - submits a second chain on a folder without WAV files, its environment given only by a
#      --setup file (--export NONE), and checks that the failures are reported in one line
#      and that SLURM cancels the dependent jobs instead of leaving them pending;
#    - runs train_multinode.sbatch: `srun` + `torchrun` with 2 CPU processes (gloo) and checks
#      that training ran with world size 2. The node has two stand-in GPUs (character devices
#      SLURM schedules as gres/gpu, no CUDA): that job asks for them with --gpus-per-node, so
#      its process count comes from SLURM_GPUS_ON_NODE; chain.sh --gpus 3 must be refused.
#
# Environment: USVPIPE_PYTHON (interpreter with usvpipe's dependencies; default python3; this
# checkout is put first on PYTHONPATH so the jobs run this copy of usvpipe),
# USVPIPE_SELFTEST_PORT (slurmctld port, slurmd uses the next one; default 16817),
# USVPIPE_SELFTEST_KEEP=1 leaves the daemons running for inspection.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SLURM_DIR=$REPO/scripts/slurm
T0=$SECONDS
say() { printf '[selftest %3ds] %s\n' $((SECONDS - T0)) "$*"; }
fail() { say "FAIL: $*"; exit 1; }

[ "$(id -u)" = 0 ] || { echo "selftest.sh: must run as root (slurmd starts jobs; munged and the daemons need root here) (fix: sudo bash $0)" >&2; exit 2; }

# --- 1. packages --------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null || ! command -v sbatch >/dev/null; then
  say "installing slurm-wlm and munge (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq slurm-wlm munge >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq slurm-wlm munge >/dev/null; } \
    || fail "apt-get install slurm-wlm munge failed (fix: install them yourself, or check the network/apt sources)"
fi
say "$(slurmctld -V)"

PY=${USVPIPE_PYTHON:-python3}
PY=$(command -v "$PY") || fail "python '$PY' not found (fix: USVPIPE_PYTHON=/path/to/venv/bin/python)"
export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH} MPLBACKEND=Agg
"$PY" -c 'import usvpipe, torch' 2>/dev/null || fail "$PY cannot import usvpipe and torch from $REPO (fix: USVPIPE_PYTHON=/path/to/venv/bin/python of a venv with usvpipe's dependencies)"
say "usvpipe from $("$PY" -c 'import usvpipe; print(usvpipe.__file__)'), python $PY"

# --- 2. the cluster's files -----------------------------------------------------------------
W=${1:-$(mktemp -d /tmp/usvpipe-slurm-selftest.XXXXXX)}
mkdir -p "$W"; W=$(cd "$W" && pwd)
RUN=$W/run; mkdir -p "$RUN" "$W/log" "$W/spool/ctld" "$W/spool/d" "$W/munge-key" "$W/munge-sock"
chmod 700 "$W/munge-key"; chmod 755 "$W/munge-sock"
for f in "$RUN"/*.pid; do
  [ -e "$f" ] || continue
  if kill -0 "$(cat "$f")" 2>/dev/null; then fail "$f: a daemon of an earlier self-test in $W is still running (fix: stop it, or use another WORK_DIR)"; fi
done
PORT=${USVPIPE_SELFTEST_PORT:-16817}
for p in "$PORT" $((PORT + 1)); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then fail "port $p is in use (fix: USVPIPE_SELFTEST_PORT=another port)"; fi
done
NODE=$(hostname -s)
# This machine as slurmd sees it: "NodeName=vm CPUs=2 Boards=1 ... RealMemory=24105"
HW=$(slurmd -C | head -n 1 | sed 's/^NodeName=[^ ]* //')
CPUS=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$HW")
MEM=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$HW")
[ -n "$CPUS" ] && [ -n "$MEM" ] || fail "cannot read CPUs/RealMemory from 'slurmd -C': $HW"
[ "$CPUS" -ge 2 ] || fail "this machine has $CPUS CPU(s); the 2-process training check needs 2"
# Two stand-in GPUs: character devices (like /dev/null) that SLURM schedules as gres/gpu, so
# that --gpus-per-node goes through the real scheduler (SLURM_GPUS_ON_NODE, CUDA_VISIBLE_DEVICES).
# There is no CUDA behind them: the job that asks for them trains on CPU (USVPIPE_DEVICE=cpu).
rm -f "$W/fakegpu0" "$W/fakegpu1"
if mknod "$W/fakegpu0" c 1 3 2>/dev/null && mknod "$W/fakegpu1" c 1 5 2>/dev/null; then
  FAKE_GPUS=2
  echo "NodeName=$NODE Name=gpu File=$W/fakegpu[0-1]" >"$W/gres.conf"
else
  FAKE_GPUS=0  # no mknod here (e.g. a restricted container): the GPU-request checks are skipped
  : >"$W/gres.conf"
fi
export SLURM_CONF=$W/slurm.conf
cat >"$SLURM_CONF" <<EOF
# one-node cluster written by usvpipe's scripts/slurm/selftest.sh
ClusterName=usvpipe-selftest
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$W/munge-sock/munge.socket
StateSaveLocation=$W/spool/ctld
SlurmdSpoolDir=$W/spool/d
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$W/log/slurmctld.log
SlurmdLogFile=$W/log/slurmd.log
# no cgroups in a container: track processes by parent id, no CPU binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
MinJobAge=3600
KillWait=5
GresTypes=gpu
NodeName=$NODE NodeAddr=127.0.0.1 $HW $([ "$FAKE_GPUS" -gt 0 ] && echo "Gres=gpu:$FAKE_GPUS") State=UNKNOWN
PartitionName=selftest Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
say "slurm.conf for $NODE: $HW, $FAKE_GPUS stand-in GPUs (in $SLURM_CONF)"

# --- 3. daemons, stopped by pid file on any exit -----------------------------------------------
stop_daemons() {
  local rc=$?
  set +e  # cleanup goes to the end whatever fails in it
  trap - EXIT INT TERM
  if [ "${USVPIPE_SELFTEST_KEEP:-0}" = 1 ]; then
    say "daemons left running (USVPIPE_SELFTEST_KEEP=1): SLURM_CONF=$SLURM_CONF; stop: kill \$(cat $RUN/slurmd.pid $RUN/slurmctld.pid $RUN/munged.pid)"
    exit $rc
  fi
  if [ -s "$RUN/slurmctld.pid" ] && kill -0 "$(cat "$RUN/slurmctld.pid")" 2>/dev/null; then
    scancel --quiet --user=root 2>/dev/null || true
    for _ in $(seq 20); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.5; done
  fi
  [ -z "${LOCAL_PID:-}" ] || kill "$LOCAL_PID" 2>/dev/null || true
  local stopped=()
  for d in slurmd slurmctld munged; do
    local f=$RUN/$d.pid pid
    [ -s "$f" ] || continue
    pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
      stopped+=("$d:$pid")
    fi
    rm -f "$f"
  done
  say "stopped ${stopped[*]:-nothing}; files in $W"
  exit $rc
}
trap stop_daemons EXIT
trap 'exit 130' INT TERM

dd if=/dev/urandom of="$W/munge-key/munge.key" bs=1024 count=1 status=none
chmod 400 "$W/munge-key/munge.key"
munged --force --key-file="$W/munge-key/munge.key" --socket="$W/munge-sock/munge.socket" \
  --pid-file="$RUN/munged.pid" --log-file="$W/log/munged.log" --seed-file="$W/munge-key/munged.seed" \
  || fail "munged did not start (see $W/log/munged.log)"
slurmctld -f "$SLURM_CONF" || fail "slurmctld did not start (see $W/log/slurmctld.log)"
slurmd -f "$SLURM_CONF" || fail "slurmd did not start (see $W/log/slurmd.log)"
for _ in $(seq 60); do
  state=$(sinfo -h -n "$NODE" -o %t 2>/dev/null || true)
  [ "$state" = idle ] && break
  sleep 0.5
done
[ "$state" = idle ] || fail "node $NODE is '${state:-not reported}', not idle, after 30 s (see $W/log/slurmd.log, slurmctld.log)"
say "cluster up: munged $(cat "$RUN/munged.pid"), slurmctld $(cat "$RUN/slurmctld.pid"), slurmd $(cat "$RUN/slurmd.pid"); node $NODE idle"

# --- 4. data and config --------------------------------------------------------------------------
# 8 animals (4 per group) x 4 recordings x 3 s: a few hundred syllables, seconds of work per stage.
"$PY" -m usvpipe synth "$W/data" --animals-per-group 4 --recordings-per-animal 4 --duration-s 3 --seed 0 >/dev/null
N_REC=$(find "$W/data" -name '*.wav' | wc -l)
cat >"$W/usvpipe.toml" <<EOF
# the self-test's run: small images, a two-epoch VAE, PCA instead of UMAP, exact animal-level MMD
[run]
input = "data"
output = "local"
device = "cpu"
[syllables]
shape = [32, 32]
[train]
# 12 epochs of a few steps; the requeue test holds the first attempt after its first
# checkpoint (selftest_hold), so any number above 1 gives a resume mid-run
epochs = 12
# a checkpoint after every epoch: with the default 30 s minimum interval a fast run's first
# checkpoint was its last, and the requeue resumed "after epoch 12 of 12"
checkpoint_min_interval_s = 0
# the epochs above exactly: no step floor (the default 2000 steps would make the test minutes longer)
min_steps = 0
batch_size = 32
latent_dim = 8
channels = [4, 8]
hidden = [32]
patience = 0
# no validation split: model.pt is then the last epoch, so the resumed epochs reach the latents
val_fraction = 0.0
figure_every = 0
num_workers = 0
[umap]
method = "pca"
figure_formats = ["png"]
dpi = 50
explorer = false
[mmd]
permutations = 200
syllable_view = false
EOF
say "data: $N_REC recordings in $W/data; config $W/usvpipe.toml"
CFG=$W/usvpipe.toml

# helpers on job state (scontrol keeps finished jobs for MinJobAge)
jfield() { scontrol show job -o "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }
wait_jobs() {  # wait_jobs SECONDS ID... : until none is pending/running
  local limit=$1; shift
  local end=$((SECONDS + limit))
  while [ $SECONDS -lt $end ]; do
    local busy=0 id
    for id in "$@"; do
      [ -n "$(squeue -h -j "$id" -t PD,R,CG,CF,S,RQ 2>/dev/null)" ] && busy=1
    done
    [ $busy = 0 ] && return 0
    sleep 1
  done
  squeue >&2 || true
  return 1
}
states() {  # states ID: "STATE:EXIT" of every job/task of ID
  scontrol show job -o "$1" 2>/dev/null | tr ' ' '\n' | awk -F= '$1=="JobState"{s=$2} $1=="ExitCode"{print s":"$2}' | sort | uniq -c | tr -s ' ' | xargs
}
ts() { date -d "$1" +%s; }

# --- 5. the chain ----------------------------------------------------------------------------------
# Everything the jobs need comes through chain.sh's options: CPU-only, one core per job except
# what training asks, memory far below the node's.
# The training job's first attempt holds after its first checkpoint until the requeue test's
# signal has requeued it (selftest_hold/sitecustomize.py): the requeue never races the training.
HELD=$W/slurm/model.held
CHAIN_OUT=$(USVPIPE_PYTHON=$PY PYTHONPATH=$SLURM_DIR/selftest_hold:$PYTHONPATH USVPIPE_SELFTEST_HOLD=$W/slurm/model \
  bash "$SLURM_DIR/chain.sh" --tasks 4 --gpus 0 \
  --segment-cpus 1 --segment-mem 1G --segment-time 10 --train-cpus 1 --train-mem 2G --train-time 20 \
  --analyse-cpus 1 --analyse-mem 2G --analyse-time 10 "$W/data" "$W/slurm" "$CFG" 2>&1) || { echo "$CHAIN_OUT"; fail "chain.sh refused to submit"; }
echo "$CHAIN_OUT"
read -r SEG MERGE TRAIN ANALYSE < <(sed -n 's/^submitted: segment=\([0-9]*\) merge=\([0-9]*\) train=\([0-9]*\) analyse=\([0-9]*\)$/\1 \2 \3 \4/p' <<<"$CHAIN_OUT")
[ -n "${ANALYSE:-}" ] || fail "chain.sh did not print the job ids"
for j in $MERGE $TRAIN $ANALYSE; do say "job $j ($(jfield "$j" JobName)) submitted with Dependency=$(jfield "$j" Dependency)"; done

# --- 6. alongside: the local run, the cancel test, the requeue test, torchrun under srun ----------
# The local run is pinned to one thread, as the SLURM training job is (--train-cpus 1), so the
# two trainings do the same arithmetic.
( cd "$W" && OMP_NUM_THREADS=1 "$PY" -m usvpipe run "$CFG" --output "$W/local" --no-progress >"$W/log/local_run.log" 2>&1; echo $? >"$W/log/local_run.rc" ) &
LOCAL_PID=$!

# Cancel test: a 2-task array into its own store, one task at a time (%1). When task 1 has
# written its first shard, scancel it; then resubmit task 1 alone (--array=1).
CSTORE=$W/cancel/store; mkdir -p "$W/cancel/logs"
CCOMMON=(--chdir "$W/cancel" --export "ALL,USVPIPE_PYTHON=$PY,USVPIPE_SLURM_DIR=$SLURM_DIR,USVPIPE_TASKS=2" --cpus-per-task 1 --mem 1G --time 10)
C1=$(sbatch --parsable "${CCOMMON[@]}" --array=0-1%1 --output "$W/cancel/logs/%x-%A_%a.out" "$SLURM_DIR/segment_array.sbatch" "$W/data" "$CSTORE" "$CFG")
N_TASK0=$(( (N_REC + 1) / 2 )); N_TASK1=$(( N_REC / 2 ))
nshards() { find "$CSTORE/shards" -maxdepth 1 -name '*.h5' 2>/dev/null | wc -l; }

# torchrun under srun, 2 CPU processes, once the chain's store is merged (2 epochs: the point
# is the launch, not the model). The job asks for the 2 stand-in GPUs, so the number of
# processes comes from what SLURM allocated (SLURM_GPUS_ON_NODE), and trains on CPU (gloo).
if [ "$FAKE_GPUS" -gt 0 ]; then DDP_ASK=(--gpus-per-node 2) DDP_ENV="USVPIPE_DEVICE=cpu"; else DDP_ASK=() DDP_ENV="USVPIPE_NPROC=2"; fi
DDP=$(sbatch --parsable --chdir "$W" --export "ALL,USVPIPE_PYTHON=$PY,USVPIPE_SLURM_DIR=$SLURM_DIR,$DDP_ENV" "${DDP_ASK[@]}" \
  --dependency "afterok:$MERGE" --kill-on-invalid-dep=yes --nodes 1 --cpus-per-task 2 --mem 3G --time 20 \
  --output "$W/log/%x-%j.out" "$SLURM_DIR/train_multinode.sbatch" "$W/slurm/store" "$W/ddp" --config "$CFG" --epochs 2)
say "submitted cancel-test array $C1 (2 tasks, one at a time) and srun+torchrun job $DDP"

# Failure path: a chain on a folder without WAV files, its environment set only by a --setup
# file (--export NONE). Segmentation and merge must fail with their one-line errors, and
# SLURM must cancel training and analysis instead of leaving them pending forever.
mkdir -p "$W/empty"
printf 'export PYTHONPATH=%q MPLBACKEND=Agg\n' "$PYTHONPATH" >"$W/setup.sh"
FAIL_OUT=$(USVPIPE_PYTHON=$PY bash "$SLURM_DIR/chain.sh" --tasks 1 --gpus 0 --export NONE --setup "$W/setup.sh" \
  --segment-cpus 1 --segment-mem 1G --train-cpus 1 --train-mem 1G --analyse-cpus 1 --analyse-mem 1G "$W/empty" "$W/failrun" "$CFG" 2>&1) \
  || { echo "$FAIL_OUT"; fail "chain.sh refused the failure-path chain"; }
read -r FSEG FMERGE FTRAIN FANALYSE < <(sed -n 's/^submitted: segment=\([0-9]*\) merge=\([0-9]*\) train=\([0-9]*\) analyse=\([0-9]*\)$/\1 \2 \3 \4/p' <<<"$FAIL_OUT")
say "failure-path chain on an empty folder: segment=$FSEG merge=$FMERGE train=$FTRAIN analyse=$FANALYSE"

# Requeue test: when the chain's training has written its first checkpoint and holds there
# ($HELD written), send the batch shell the signal SLURM sends before the time limit
# (--signal=B:USR1@120); the script must requeue the job, the old attempt must stop, and the
# new one resume from the checkpoint the held attempt wrote.
# SLURM holds a requeued job for ~2 minutes (BeginTime); the test releases it at once.
CKPT=$W/slurm/model/checkpoint.pt
cancelled=0 resubmitted=0 signalled=0 released=0 C2="" K=0 AT_CANCEL=0
end=$((SECONDS + 200))
while [ $((resubmitted + released)) -lt 2 ] && [ $SECONDS -lt $end ]; do
  if [ $cancelled = 0 ] && [ "$(nshards)" -gt "$N_TASK0" ]; then
    scancel "${C1}_1"; cancelled=1
  elif [ $cancelled = 1 ] && [ $resubmitted = 0 ] && [ -z "$(squeue -h -j "${C1}_1" 2>/dev/null)" ]; then
    AT_CANCEL=$(nshards); K=$((AT_CANCEL - N_TASK0))
    find "$CSTORE/shards" -maxdepth 1 -name '*.h5' -printf '%f %i %T@\n' | sort >"$W/cancel/shards_at_cancel.txt"
    say "cancel test: scancel ${C1}_1 with $K of its $N_TASK1 recordings written ($(jfield "${C1}_1" JobState)); resubmitting task 1 alone"
    C2=$(sbatch --parsable "${CCOMMON[@]}" --array=1 --output "$W/cancel/logs/%x-%A_%a.out" "$SLURM_DIR/segment_array.sbatch" "$W/data" "$CSTORE" "$CFG")
    resubmitted=1
  fi
  if [ $signalled = 0 ] && [ -s "$HELD" ] && [ -e "$CKPT" ]; then
    scancel --batch --signal=USR1 "$TRAIN"; signalled=1
    say "requeue test: USR1 to train job $TRAIN, held after its checkpoint of epoch $(cat "$HELD")"
  elif [ $signalled = 1 ] && [ $released = 0 ] && [ "$(squeue -h -j "$TRAIN" -o %T 2>/dev/null)" = PENDING ]; then
    scontrol update JobId="$TRAIN" StartTime=now; released=1
    say "requeue test: job $TRAIN requeued (restarts $(jfield "$TRAIN" Restarts)); released from SLURM's requeue hold"
  fi
  sleep 0.05
done
[ $resubmitted = 1 ] || say "cancel test: task 1 never got going (timeout)"
[ $released = 1 ] || say "requeue test: train job $TRAIN never came back to PENDING (timeout)"
say "waiting for the jobs"

wait_jobs 200 "$SEG" "$MERGE" "$TRAIN" "$ANALYSE" "$C1" ${C2:+"$C2"} "$DDP" "$FSEG" "$FMERGE" "$FTRAIN" "$FANALYSE" || fail "jobs still not finished after 240 s"
wait "$LOCAL_PID" || true
say "all jobs finished"

# --- 7. checks -------------------------------------------------------------------------------------
FAILS=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; FAILS=$((FAILS + 1)); }
expect_state() {  # expect_state ID WANT LABEL
  local got; got=$(states "$1")
  if [ "$got" = "$2" ]; then ok "$3: $got"; else bad "$3: '$got', expected '$2' (logs in $W/slurm/logs, $W/log)"; fi
}
expect_state "$SEG" "4 COMPLETED:0:0" "segment array $SEG (4 tasks)"
expect_state "$MERGE" "1 COMPLETED:0:0" "merge $MERGE"
expect_state "$TRAIN" "1 COMPLETED:0:0" "train $TRAIN"
expect_state "$ANALYSE" "1 COMPLETED:0:0" "analyse $ANALYSE"
# each dependent job started only after the job it depends on had ended
seg_end=0
for t in 0 1 2 3; do e=$(ts "$(jfield "${SEG}_$t" EndTime)"); [ "$e" -gt "$seg_end" ] && seg_end=$e; done
prev_end=$seg_end prev=$SEG
for j in $MERGE $TRAIN $ANALYSE; do
  s=$(ts "$(jfield "$j" StartTime)")
  if [ "$s" -ge "$prev_end" ]; then ok "job $j started $((s - prev_end)) s after job $prev ended"; else bad "job $j started before job $prev ended"; fi
  prev_end=$(ts "$(jfield "$j" EndTime)") prev=$j
done
[ "$(cat "$W/log/local_run.rc" 2>/dev/null)" = 0 ] && ok "local usvpipe run finished" || bad "local usvpipe run failed: $(tail -n 3 "$W/log/local_run.log")"

# cancel test
[ "$K" -gt 0 ] && [ "$K" -lt "$N_TASK1" ] && ok "task ${C1}_1 cancelled mid-run: $K of $N_TASK1 recordings written" \
  || bad "task ${C1}_1 was not cancelled mid-run ($K of $N_TASK1 written; the machine may be too fast or too loaded for the window)"
expect_state "${C1}_0" "1 COMPLETED:0:0" "cancel test task 0"
expect_state "${C1}_1" "1 CANCELLED:0:15" "cancel test task 1"
expect_state "$C2" "1 COMPLETED:0:0" "resubmitted task 1 ($C2, --array=1)"
RESUB_LOG=$(ls "$W/cancel/logs/"*"-${C2}_1.out")
LINE=$(grep '^segment: .* recording(s):' "$RESUB_LOG" || true)
WANT="segment: $N_TASK1 recording(s): $((N_TASK1 - K)) done, $K skipped (up to date), 0 failed"
case $LINE in "$WANT"*) ok "resubmission processed only the missing recordings: $LINE" ;; *) bad "resubmission log says '$LINE', expected '$WANT'" ;; esac
find "$CSTORE/shards" -maxdepth 1 -name '*.h5' -printf '%f %i %T@\n' | sort >"$W/cancel/shards_after.txt"
if [ "$(join "$W/cancel/shards_at_cancel.txt" "$W/cancel/shards_after.txt" | awk '$2!=$4 || $3!=$5' | wc -l)" = 0 ] \
   && [ "$(wc -l <"$W/cancel/shards_after.txt")" = "$N_REC" ]; then
  ok "the $AT_CANCEL shards written before the cancel are untouched (inode, mtime); $N_REC shards in all"
else
  bad "shards written before the cancel were rewritten, or the store is incomplete"
fi

# requeue test
TRAIN_LOG=$W/slurm/logs/usv-train-$TRAIN.out
RESUMED=$(sed -n 's/.*resuming from .* after epoch \([0-9]*\)$/\1/p' "$TRAIN_LOG" | head -n 1)
HELD_EPOCH=$(cat "$HELD" 2>/dev/null || echo none)
EPOCHS=$(sed -n 's/^epochs = //p' "$CFG")
BEST=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["best_epoch"])' "$W/slurm/model/train.json" 2>/dev/null || echo 0)
if [ "$(jfield "$TRAIN" Restarts)" = 1 ] && grep -q "time limit near: requeueing" "$TRAIN_LOG" && [ -n "$RESUMED" ] \
   && [ "$RESUMED" = "$HELD_EPOCH" ] && [ "$RESUMED" -lt "$EPOCHS" ] && [ "$(grep -c '^trained ' "$TRAIN_LOG")" = 1 ] && [ "$BEST" -gt "$RESUMED" ]; then
  ok "train job requeued itself on USR1 and resumed after epoch $RESUMED of $EPOCHS; the first attempt stopped (one 'trained' line); model.pt is epoch $BEST, trained after the resume"
else
  bad "requeue: restarts=$(jfield "$TRAIN" Restarts), resumed after epoch '${RESUMED}' of $EPOCHS (held at '$HELD_EPOCH'), model.pt from epoch $BEST, $(grep -c '^trained ' "$TRAIN_LOG") 'trained' line(s) in $TRAIN_LOG"
fi

# failure path
expect_state "$FSEG" "1 FAILED:2:0" "failure path: segment $FSEG on an empty folder"
expect_state "$FMERGE" "1 FAILED:2:0" "failure path: merge $FMERGE"
FLOG=$(ls "$W/failrun/logs/"*"-${FSEG}_0.out")
grep -q '^usvpipe job .*usvpipe 0' "$FLOG" && grep -q 'no WAV files found' "$FLOG" \
  && ok "failure path: the job found usvpipe through --setup with --export NONE and said: $(grep -m1 -o 'error: .*' "$FLOG")" \
  || bad "failure path: $FLOG lacks the job header or the 'no WAV files' error"
for j in $FTRAIN $FANALYSE; do
  st="$(jfield "$j" JobState) $(jfield "$j" Reason)"
  [ "$st" = "CANCELLED DependencyNeverSatisfied" ] && ok "failure path: job $j ($(jfield "$j" JobName)) $st, not pending forever" \
    || bad "failure path: job $j is '$st', expected 'CANCELLED DependencyNeverSatisfied'"
done

# GPU requests through the scheduler (stand-in GPUs)
if [ "$FAKE_GPUS" -gt 0 ]; then
  HDR=$(grep -m1 '^usvpipe job' "$W/log/usv-train-mn-$DDP.out" || true)
  case $HDR in *"gpus=2 device=cpu"*) ok "--gpus-per-node 2 reached the job: $(grep -o 'cpus=.*device=cpu' <<<"$HDR"), 2 processes from SLURM_GPUS_ON_NODE" ;;
    *) bad "the GPU job's header is '$HDR', expected gpus=2 device=cpu" ;; esac
  REFUSED=$(USVPIPE_PYTHON=$PY bash "$SLURM_DIR/chain.sh" --dry-run --tasks 1 --gpus 3 --segment-cpus 1 --segment-mem 1G \
    --train-cpus 1 --train-mem 1G --analyse-cpus 1 --analyse-mem 1G "$W/data" "$W/dryrun" "$CFG" 2>&1) && REFUSED="(accepted)"
  case $REFUSED in "chain.sh: the train job cannot run"*"--gpus 0 to train on CPU"*) ok "chain.sh --gpus 3 on a 2-GPU node refused before submitting: ${REFUSED:0:160}..." ;;
    *) bad "chain.sh --gpus 3 on a 2-GPU node: '$REFUSED'" ;; esac
else
  say "no stand-in GPUs (mknod failed): GPU-request checks skipped"
fi

# torchrun under srun
expect_state "$DDP" "1 COMPLETED:0:0" "srun + torchrun, 2 CPU processes ($DDP)"
WS=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["world_size"])' "$W/ddp/train.json" 2>/dev/null || echo "?")
[ "$WS" = 2 ] && ok "torchrun training ran with world size $WS (gloo): $(grep -m1 '^trained' "$W/log/usv-train-mn-$DDP.out" || true)" || bad "torchrun training world size '$WS', expected 2"

# results against the local run
LATENT_ATOL=${USVPIPE_SELFTEST_LATENT_ATOL:-1e-5}
if "$PY" "$SLURM_DIR/selftest_check.py" "$W/local" "$W/slurm" --store "$CSTORE" --latent-atol "$LATENT_ATOL" --json "$W/numbers.json"; then
  :
else
  FAILS=$((FAILS + 1))
fi
say "numbers: $(tr -d '\n ' <"$W/numbers.json")"
[ "$FAILS" = 0 ] || fail "$FAILS check(s) failed; logs: $W/slurm/logs, $W/cancel/logs, $W/log"
say "PASS: all checks ($((SECONDS - T0)) s)"
