"""Benchmark alert lineage: do rings keep their ids across a re-run on changed data, and do only
new rings alert? (issue 17's targets; figures in docs/benchmarks.md)

    python bench/bench_lineage.py --persons 50000 [--seed 5]

Three runs in one fresh home: the generated dataset; then the same data with 5% of events removed
and one person of each planted ring of 4 or more leaving (synth/changes.py `thin_and_leave`);
separately, the generated data again with 3 new identity rings planted. Prints the share of
persisting planted rings that kept their id (with lineage, and what the member-hash ids alone
would have kept), and the ring alerts the planted run raised.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from composer.pipeline import run_pipeline
from features.rings.evaluation import id_persistence
from features.rings.lineage import inherit_ids
from riskgraph.results import ResultsDB
from riskgraph.settings import Settings
from synth.changes import plant_identity_rings, thin_and_leave
from synth.generator import generate


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="bench_lineage_"))
    try:
        base = root / "base"
        generate(persons=args.persons, seed=args.seed, out=base, progress=False)
        truth = pd.read_csv(base / "truth" / "truth.csv", dtype=str, keep_default_na=False)
        leavers = thin_and_leave(base, root / "changed", drop_share=0.05, min_ring_size=4, seed=args.seed)
        s = Settings(home=root / "home", progress=False)
        t0 = time.perf_counter()
        first = run_pipeline(data=base, out=None, settings=s)
        t1 = time.perf_counter()
        second = run_pipeline(data=root / "changed", out=None, settings=s)
        t2 = time.perf_counter()
        with_lineage = id_persistence(first.rings, second.rings, truth)
        lineage = ResultsDB.of(s).read_run_table(second.run_id, "ring_lineage")
        fresh = second.rings.assign(
            ring_id=second.rings["ring_id"].map(dict(zip(lineage["ring_id"], lineage["fresh_id"])))
        )
        hash_only = id_persistence(first.rings, fresh, truth)
        planted = plant_identity_rings(base, root / "planted", rings=3, size=4)
        s2 = Settings(home=root / "home2", progress=False)
        before = run_pipeline(data=base, out=None, settings=s2)
        after = run_pipeline(data=root / "planted", out=None, settings=s2)
        alerts = ResultsDB.of(s2).read_run_table(after.run_id, "alerts")
        rings = alerts[alerts["subject_type"] == "ring"]
        planted_ids = set(after.rings.loc[after.rings["entity_id"].isin(sum(planted, [])), "ring_id"])
        raised = rings[rings["raised"].astype(bool)]
        old = set(before.rings["ring_id"])
        t_lineage = time.perf_counter()
        inherit_ids(second.rings, first.rings)
        t_lineage = time.perf_counter() - t_lineage
        print(
            "| persons | planted rings | leavers | persisting | kept id (lineage) | kept id (member hash only) "
            "| new rings alerted | unchanged rings re-alerted | run 1 s | run 2 s | lineage s |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        print(
            f"| {args.persons:,} | {truth.loc[truth['ring_id'] != '', 'ring_id'].nunique()} | {len(leavers)} "
            f"| {with_lineage['persisting']} | {with_lineage['kept_id']} ({with_lineage['share_kept']:.1%}) "
            f"| {hash_only['kept_id']} ({hash_only['share_kept']:.1%}) "
            f"| {len(planted_ids & set(raised['subject_id']))} of {len(planted)} "
            f"| {int(raised['subject_id'].isin(old).sum())} of {len(old)} "
            f"| {t1 - t0:.1f} | {t2 - t1:.1f} | {t_lineage:.3f} |"
        )
        if with_lineage["lost"]:
            print("lost:", with_lineage["lost"])
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
