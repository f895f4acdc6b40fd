#!/usr/bin/env python
"""How much time does the sensitivity analysis add to the demo? (the default must add <= 2 minutes on 2 cores)

    OMP_NUM_THREADS=2 python scripts/bench/power_budget.py                  # demo data without a difference
    OMP_NUM_THREADS=2 python scripts/bench/power_budget.py --draws 100 400  # other Monte Carlo budgets
    OMP_NUM_THREADS=2 python scripts/bench/power_budget.py --bandwidths median agg  # cost of each test's rule

Runs the demo's pipeline (segment, train, encode, mmd, measures) on the demo's data drawn
with no group difference (``group_shift = 0``, so the test does not reject and the report
needs the sensitivity), timed with the power stage off; then times the power stage's work
(:func:`usvpipe.power.sensitivity` on the run folder, the pilot's loading included) at each
``--draws``. Prints the seconds, the ratio to the demo's own time measured in the same run,
the MDEs and the load average. ``--bandwidths`` times the power stage once per bandwidth rule
of the simulated test (default: the report's own rule only) and prints each rule's time
against the first's.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--draws", type=int, nargs="+", default=[200])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="run folder (default: a temporary one; an existing run is reused)")
    ap.add_argument("--bandwidths", nargs="+", default=None,
                    help="bandwidth rules of the simulated test to time (default: the report's, i.e. the run's [mmd])")
    args = ap.parse_args(argv)
    from usvpipe.pipeline import run_pipeline
    from usvpipe.pipeline.demo import demo_config, make_demo_data
    from usvpipe.power import PowerParams, load_run_pilot, sensitivity

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="power_budget_")) / "run"
    if not (out / "demo_data" / "metadata.csv").exists():
        make_demo_data(out / "demo_data", group_shift=0.0, seed=args.seed)
    cfg = demo_config(out, seed=args.seed)
    cfg = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, stages=("segment", "train", "encode", "mmd")),
                              stages={**cfg.stages, "power": PowerParams(enabled=False)})
    t0 = time.perf_counter()
    result = run_pipeline(cfg, progress=False, quiet=True)
    demo_s = time.perf_counter() - t0
    mmd = result.mmd if isinstance(result.mmd, dict) else result.mmd.to_dict()
    print(f"demo without the power stage: {demo_s:.1f} s (p = {mmd['p_value']:.3g}, reject = {mmd['reject']}); "
          f"stages: " + ", ".join(f"{s.name} {s.seconds:.1f} s" for s in result.stages if s.status == "ran"))
    print("| draws | bandwidth | seconds | ratio to the demo | ratio to the first rule | pitch MDE (kHz) | "
          "duration MDE (%) | usage MDE (points) | load |")
    print("|---|---|---|---|---|---|---|---|---|")
    for draws in args.draws:
        params = PowerParams(draws=draws, seed=args.seed)
        first = None
        for rule in args.bandwidths or [None]:
            t0 = time.perf_counter()
            pilot = load_run_pilot(out, max_per_animal=params.max_syllables_per_animal, seed=params.seed)
            if rule is not None:  # the simulated test's rule, as if the report had run it
                pilot.mmd = dataclasses.replace(pilot.mmd, bandwidth=rule)
            sens = sensitivity(pilot, params)
            sec = time.perf_counter() - t0
            first = first or sec
            mde = {m.kind: (f"{m.value:.3g} ± {m.se:.2g}" if m.value is not None and m.se is not None else str(m.value))
                   for m in sens.latent}
            print(f"| {draws} | {pilot.mmd.bandwidth} | {sec:.1f} | {sec / demo_s:.2f} | {sec / first:.2f} | "
                  f"{mde.get('pitch')} | {mde.get('duration')} | {mde.get('usage')} | {os.getloadavg()[0]:.2f} |")


if __name__ == "__main__":
    main()
