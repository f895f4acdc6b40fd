"""scripts/slurm: the job scripts' own logic, and (USVPIPE_TEST_SLURM=1) the self-test on a real SLURM.

The fast tests run the scripts with bash outside any scheduler: chain.sh against a stand-in
`sbatch` that records what it was asked, the training script with a stand-in interpreter
that records the launch, and one segmentation array task for real. What only a scheduler
can show (dependencies, scancel, requeue, srun) is the self-test's job: it brings up a
one-node SLURM on this machine and needs root.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SLURM = REPO / "scripts" / "slurm"
BASH_SCRIPTS = sorted(SLURM.glob("*.sh")) + sorted(SLURM.glob("*.sbatch"))

FAKE_SBATCH = r"""#!/bin/bash
# records every call; --test-only refuses the script named in $FAKE_REFUSE; --parsable prints ids
printf '%q ' "$@" >>"$FAKE_LOG"; echo >>"$FAKE_LOG"
for a in "$@"; do
  if [ "$a" = --test-only ]; then
    for b in "$@"; do case $b in *"${FAKE_REFUSE:-@none@}") echo "sbatch: error: Invalid generic resource (gres) specification" >&2; exit 1 ;; esac; done
    echo "sbatch: Job 99 to start at 2026-01-01T00:00:00 using 1 processors on nodes n1 in partition p" >&2; exit 0
  fi
done
n=$(( $(cat "$FAKE_LOG.n" 2>/dev/null || echo 100) + 1 )); echo $n >"$FAKE_LOG.n"; echo "$n"
"""

# Stands in for the venv's python: answers _env.sh's and chain.sh's `-c` probes, and records
# any other command line (the torchrun launch) with the thread count it was given.
FAKE_PYTHON = r"""#!/bin/bash
if [ "$1" = -c ]; then case $2 in *__version__*) echo "0.0-test /fake/usvpipe/__init__.py" ;; *) echo "" ;; esac; exit 0; fi
printf 'OMP_NUM_THREADS=%s ' "${OMP_NUM_THREADS:-}" >>"$FAKE_LOG"; printf '%q ' "$@" >>"$FAKE_LOG"; echo >>"$FAKE_LOG"
"""


def _exe(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


@pytest.fixture
def fakes(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _exe(bin_dir / "sbatch", FAKE_SBATCH)
    py = _exe(bin_dir / "python-usv", FAKE_PYTHON)
    log = tmp_path / "calls.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "USVPIPE_"))}
    env.update(PATH=f"{bin_dir}:{env.get('PATH', '/usr/bin:/bin')}", FAKE_LOG=str(log), USVPIPE_PYTHON=str(py))
    (tmp_path / "wavs").mkdir()
    (tmp_path / "usvpipe.toml").write_text("[train]\nepochs = 1\n")
    return env, log, py


def _calls(log: Path) -> list[list[str]]:
    return [shlex.split(line) for line in log.read_text().splitlines()] if log.exists() else []


def _opt(call: list[str], name: str):
    return call[call.index(name) + 1] if name in call else None


def test_every_script_parses():
    for script in BASH_SCRIPTS:
        proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert proc.returncode == 0, f"{script.name}: {proc.stderr}"


def test_chain_on_cpu_only_asks_no_gpus_and_links_every_stage(fakes, tmp_path):
    env, log, py = fakes
    proc = subprocess.run(["bash", str(SLURM / "chain.sh"), "--gpus", "0", "--segment-cpus", "2", "--train-mem", "3G",
                           str(tmp_path / "wavs"), str(tmp_path / "run"), str(tmp_path / "usvpipe.toml"), "5"],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    calls = _calls(log)
    checks, jobs = [c for c in calls if "--test-only" in c], [c for c in calls if "--parsable" in c]
    assert len(checks) == 4 and len(jobs) == 4
    assert not any("--gpus-per-node" in c or any(a.startswith("--gres") for a in c) for c in calls)
    seg, merge, train, analyse = jobs
    assert _opt(seg, "--array") == "0-4" and _opt(seg, "--cpus-per-task") == "2"
    assert _opt(merge, "--dependency") == "afterany:101"
    assert _opt(train, "--dependency") == "afterok:102" and _opt(train, "--mem") == "3G"
    assert _opt(analyse, "--dependency") == "afterok:103"
    assert all("--kill-on-invalid-dep=yes" in c for c in (merge, train, analyse))
    run_dir = str((tmp_path / "run").resolve())
    for c in jobs:
        assert _opt(c, "--chdir") == run_dir
        assert _opt(c, "--output").startswith(run_dir + "/logs/")
        export = _opt(c, "--export").split(",")
        assert export[0] == "ALL" and f"USVPIPE_PYTHON={py}" in export and "USVPIPE_TASKS=5" in export
    assert (tmp_path / "run" / "logs").is_dir()
    assert "segment=101 merge=102 train=103 analyse=104" in proc.stdout


def test_chain_with_gpus_asks_them_for_training_and_one_for_analysis(fakes, tmp_path):
    env, log, _ = fakes
    proc = subprocess.run(["bash", str(SLURM / "chain.sh"), "--gpus", "4", "--partition", "gpu", "--export", "NONE",
                           str(tmp_path / "wavs"), str(tmp_path / "run"), str(tmp_path / "usvpipe.toml")],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    seg, merge, train, analyse = [c for c in _calls(log) if "--parsable" in c]
    assert _opt(train, "--gpus-per-node") == "4" and _opt(analyse, "--gpus-per-node") == "1"
    assert "--gpus-per-node" not in seg and "--gpus-per-node" not in merge
    assert all(_opt(c, "--partition") == "gpu" for c in (seg, merge, train, analyse))
    assert _opt(seg, "--array") == "0-19"  # default 20 tasks
    assert not _opt(train, "--export").startswith("ALL")  # only the USVPIPE_* settings travel


def test_chain_refuses_a_request_the_cluster_cannot_run_and_submits_nothing(fakes, tmp_path):
    env, log, _ = fakes
    env["FAKE_REFUSE"] = "train_1node.sbatch"
    proc = subprocess.run(["bash", str(SLURM / "chain.sh"), str(tmp_path / "wavs"), str(tmp_path / "run"),
                           str(tmp_path / "usvpipe.toml"), "2"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "the train job cannot run" in lines[0] and "gres" in lines[0] and "--gpus 0 to train on CPU" in lines[0]
    assert not any("--parsable" in c for c in _calls(log))


@pytest.mark.parametrize("bad, message", [
    (["--tasks", "0"], "--tasks must be >= 1"),
    (["--gpus", "two"], "--gpus must be a non-negative integer"),
    (["--export", "SOME"], "--export must be ALL or NONE"),
])
def test_chain_rejects_bad_options_in_one_line(fakes, tmp_path, bad, message):
    env, _, _ = fakes
    proc = subprocess.run(["bash", str(SLURM / "chain.sh"), *bad, str(tmp_path / "wavs"), str(tmp_path / "run"),
                           str(tmp_path / "usvpipe.toml")], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("slurm_env, nproc, device, threads", [
    ({"SLURM_CPUS_PER_TASK": "8"}, "1", "cpu", "8"),                                  # CPU-only job
    ({"SLURM_CPUS_PER_TASK": "8", "USVPIPE_NPROC": "2"}, "2", "cpu", "4"),           # 2 gloo processes
    ({"SLURM_CPUS_PER_TASK": "32", "SLURM_GPUS_ON_NODE": "4"}, "4", "cuda", "8"),    # one process per GPU
    ({"SLURM_CPUS_PER_TASK": "2", "SLURM_GPUS_ON_NODE": "4"}, "4", "cuda", "1"),     # fewer CPUs than GPUs
    ({"SLURM_GPUS_ON_NODE": "0"}, "1", "cpu", "1"),                                   # was a division by zero
])
def test_train_script_launches_one_process_per_gpu_or_cpu_processes(fakes, tmp_path, slurm_env, nproc, device, threads):
    env, log, _ = fakes
    env.update(slurm_env, SLURM_JOB_ID="7", USVPIPE_SLURM_DIR=str(SLURM))
    proc = subprocess.run(["bash", str(SLURM / "train_1node.sbatch"), "store", "out", "--epochs", "3"],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (launch,) = _calls(log)
    assert launch[0] == f"OMP_NUM_THREADS={threads}"
    assert launch[1:4] == ["-m", "torch.distributed.run", "--standalone"]
    assert f"--nproc_per_node={nproc}" in launch
    assert launch[launch.index("train"):] == ["train", "store", "out", "--device", device, "--resume", "--no-progress", "--epochs", "3"]


def test_a_job_that_cannot_import_usvpipe_says_which_python_and_the_fix(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "USVPIPE_"))}
    env.update(USVPIPE_PYTHON="/bin/false", USVPIPE_SLURM_DIR=str(SLURM), SLURM_JOB_ID="7")
    proc = subprocess.run(["bash", str(SLURM / "merge.sbatch"), str(tmp_path)], capture_output=True, text=True, env=env)
    assert proc.returncode == 2
    assert "'/bin/false' cannot import usvpipe" in proc.stderr and "fix: USVPIPE_PYTHON=" in proc.stderr


def test_a_resubmitted_array_task_keeps_its_own_share(tmp_path):
    """`sbatch --array=1` alone has SLURM_ARRAY_TASK_COUNT=1: with USVPIPE_TASKS it is still task 1 of 2."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "USVPIPE_"))}
    env.update(PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    subprocess.run([sys.executable, "-m", "usvpipe", "synth", str(tmp_path / "wavs"), "--animals-per-group", "1",
                    "--recordings-per-animal", "2", "--duration-s", "0.5"], check=True, capture_output=True, env=env)
    env.update(USVPIPE_PYTHON=sys.executable, USVPIPE_SLURM_DIR=str(SLURM), USVPIPE_TASKS="2", SLURM_JOB_ID="7",
               SLURM_ARRAY_TASK_ID="1", SLURM_ARRAY_TASK_MIN="1", SLURM_ARRAY_TASK_MAX="1", SLURM_ARRAY_TASK_COUNT="1",
               SLURM_CPUS_PER_TASK="1")
    proc = subprocess.run(["bash", str(SLURM / "segment_array.sbatch"), str(tmp_path / "wavs"), str(tmp_path / "store")],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "segment: shard 1/2" in proc.stdout
    assert "segment: 2 recording(s): 2 done" in proc.stdout  # 2 of the 4, not all 4
    assert len(list((tmp_path / "store" / "shards").glob("*.h5"))) == 2
    # `usvpipe segment` without --shard reads the same variables (usvpipe.hpc.shard_from_env):
    # the lone task is refused without USVPIPE_TASKS instead of taking every recording
    cmd = [sys.executable, "-m", "usvpipe", "segment", str(tmp_path / "wavs"), str(tmp_path / "store2"), "--no-progress"]
    alone = subprocess.run(cmd, capture_output=True, text=True, env={k: v for k, v in env.items() if k != "USVPIPE_TASKS"})
    assert alone.returncode == 2 and "only task of its array" in alone.stderr and "USVPIPE_TASKS" in alone.stderr
    assert not (tmp_path / "store2" / "shards").exists()
    with_total = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert with_total.returncode == 0 and "segment: 2 recording(s): 2 done" in with_total.stdout, with_total.stderr


@pytest.mark.skipif(os.environ.get("USVPIPE_TEST_SLURM") != "1",
                    reason="brings up a real one-node SLURM (root, ~2 min): set USVPIPE_TEST_SLURM=1 to run it")
def test_selftest_runs_the_chain_on_a_real_slurm(tmp_path):
    env = dict(os.environ, USVPIPE_PYTHON=sys.executable)
    proc = subprocess.run(["bash", str(SLURM / "selftest.sh"), str(tmp_path / "selftest")],
                          capture_output=True, text=True, env=env, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert "PASS: all checks" in out
    assert not [line for line in out.splitlines() if line.startswith("FAIL")]


def test_the_selftest_hold_keeps_the_first_training_attempt_after_its_checkpoint_until_killed(tmp_path):
    """The requeue check's first attempt waits after its first checkpoint (no race with the
    machine's speed); the requeued attempt (SLURM_RESTART_COUNT=1) resumes from it and finishes."""
    import signal
    import time

    import torch
    from test_vae import _make_store

    store, out = tmp_path / "store", tmp_path / "model"
    _make_store(store, n_recordings=2, per_recording=40)
    (tmp_path / "cfg.toml").write_text("[train]\ncheckpoint_min_interval_s = 0\n")  # as selftest.sh's config
    env = dict(os.environ, PYTHONPATH=f"{SLURM / 'selftest_hold'}{os.pathsep}{REPO}", USVPIPE_SELFTEST_HOLD=str(out),
               SLURM_RESTART_COUNT="0", SLURM_JOB_NAME="usv-train", OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    cmd = [sys.executable, "-m", "usvpipe", "-v", "train", str(store), str(out), "--device", "cpu", "--resume",
           "--no-progress", "--epochs", "6", "--min-steps", "0", "--latent-dim", "4", "--batch-size", "16",
           "--config", str(tmp_path / "cfg.toml")]
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    held = Path(str(out) + ".held")
    deadline = time.monotonic() + 180
    while not held.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert held.exists(), first.communicate()[0][-3000:]
    time.sleep(3)  # however fast the machine, the held attempt goes no further
    assert first.poll() is None
    epoch = int(held.read_text())
    assert torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)["epoch"] == epoch < 6
    first.send_signal(signal.SIGTERM)  # what SLURM sends when the requeue stops the job
    assert "trained" not in first.communicate(timeout=60)[0].split("selftest hold:")[-1]
    second = subprocess.run(cmd, env={**env, "SLURM_RESTART_COUNT": "1"}, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"after epoch {epoch}" in second.stdout + second.stderr
    assert json.loads((out / "train.json").read_text())["epochs_run"] == 6
