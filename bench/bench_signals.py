"""The scoring stage's per-entity bookkeeping around the models, on a finished run's outputs: the
rule and ring feature columns (features/signals.py), each entity's rule list and strictest grade
cap (scoring/score.py), and the capped grades (scoring/grades.py). Each is timed `--repeat` times
per entity type; the best time is printed.

    .venv/bin/python bench/bench_signals.py --out OUT [--repeat 3]

OUT is a `riskgraph pipeline --out` folder (rule_hits.csv, rings.csv, scores.csv). The hits' grade
caps come from the shipped rule packs, as the run set them.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from features.signals import ring_features, rule_features
from rules.pack import load_packs
from scoring.grades import GRADE_ORDER, apply_caps
from scoring.score import _caps, _rule_lists


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    hits = pd.read_csv(
        args.out / "rule_hits.csv",
        usecols=["rule_id", "entity_type", "entity_id", "severity"],
        dtype={"entity_id": str},
    )
    caps = {r.id: r.grade_cap or "" for pack in load_packs() for r in pack.rules}
    hits["grade_cap"] = hits["rule_id"].map(caps).fillna("")
    members = pd.read_csv(args.out / "rings.csv", dtype={"entity_id": str})
    scored = pd.read_csv(args.out / "scores.csv", usecols=["entity_type", "entity_id"], dtype={"entity_id": str})
    print(f"{len(hits):,} hits, {len(members):,} ring memberships")
    print(
        f"{'type':10s} {'entities':>10s} {'rule feat.':>10s} {'ring feat.':>10s} {'rule lists':>10s} {'caps':>8s} {'capped':>8s}"
    )
    rng = np.random.default_rng(0)
    for t in sorted(scored["entity_type"].unique()):
        ids = pd.Index(np.sort(scored.loc[scored["entity_type"] == t, "entity_id"].unique()))
        grade = pd.Series(rng.choice(GRADE_ORDER, len(ids)), index=ids)
        cap = _caps(hits, t, ids)[0]
        calls: list[tuple[Callable[..., object], tuple[object, ...]]] = [
            (rule_features, (hits, t, ids)),
            (ring_features, (members, t, ids)),
            (_rule_lists, (hits, t, ids)),
            (_caps, (hits, t, ids)),
            (apply_caps, (grade, cap)),
        ]
        took = [best(partial(fn, *a), args.repeat) for fn, a in calls]
        print(
            f"{t:10s} {len(ids):>10,} "
            + " ".join(f"{s:>9.3f}s" for s in took[:3])
            + f" {took[3]:>7.3f}s {took[4]:>7.3f}s"
        )


if __name__ == "__main__":
    main()
