"""Benchmark ring detection: time, peak memory, recall/precision vs. truth and a Louvain baseline.

    python bench/bench_rings.py --persons 20000 [--seed 1] [--data DIR] [--no-baseline]

Generates a synthetic dataset with synth.generator (unless --data names one that has
truth/truth.csv), evaluates the rule packs (facility rings read their hits; timed apart from the
rings), and prints one markdown table row, then recall and precision per ring type.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from composer.pipeline import evaluate_rules
from features.rings import detect_rings
from features.rings.evaluation import RING_PATTERNS, evaluate_by_type, evaluate_rings, louvain_baseline
from graph.dataset import load_dataset
from riskgraph.settings import Settings

HEADER = (
    "| persons | rows | load s | rules s | rings s | load avg (1 min, before/after) | peak GiB (after load / after rings) "
    "| rings | rings by type | recall (4 ring types) | recall (all planted) | precision "
    "| baseline s | baseline recall (all) | baseline precision | recall by pattern |"
)


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", type=Path, help="an existing dataset folder with truth/truth.csv")
    ap.add_argument("--no-baseline", action="store_true", help="skip the Louvain baseline")
    ap.add_argument("--show", type=int, default=0, help="print the N top rings")
    args = ap.parse_args(argv)

    data = args.data
    if data is None:
        from synth.generator import generate

        data = Path(tempfile.mkdtemp(prefix="bench_rings_"))
        generate(persons=args.persons, seed=args.seed, out=data)
    t0 = time.perf_counter()
    ds = load_dataset(data)
    t_load = time.perf_counter() - t0
    rows = sum(ds.row_counts().values())
    truth = pd.read_csv(data / "truth" / "truth.csv", dtype=str, keep_default_na=False)

    settings = Settings(progress=False)
    t0 = time.perf_counter()
    hits = evaluate_rules(ds, settings).hits
    t_rules = time.perf_counter() - t0
    peak_load = _peak_gib()
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    result = detect_rings(ds, hits, settings.rings)
    t_rings = time.perf_counter() - t0
    load_after = os.getloadavg()[0]
    peak = _peak_gib()
    by_type = result.rings["ring_type"].value_counts().sort_index()
    ev = evaluate_rings(result.members, truth)
    ev4 = evaluate_rings(result.members, truth, patterns=RING_PATTERNS)
    if args.show:
        print(result.rings.head(args.show).to_string())

    if args.no_baseline:
        b_time, b_ev = float("nan"), {"recall": float("nan"), "precision": float("nan")}
    else:
        t0 = time.perf_counter()
        base = louvain_baseline(ds)
        b_time = time.perf_counter() - t0
        b_ev = evaluate_rings(base, truth)
    n_persons = len(ds.table("persons"))
    print(HEADER)
    print("|" + "---|" * (HEADER.count("|") - 1))
    types = ", ".join(f"{t} {n}" for t, n in by_type.items())
    print(
        f"| {n_persons:,} | {rows:,} | {t_load:.1f} | {t_rules:.1f} | {t_rings:.1f} | {load_before:.1f} / {load_after:.1f} | "
        f"{peak_load:.2f} / {peak:.2f} | {ev['n_detected']} | {types} | {ev4['recall']:.3f} | {ev['recall']:.3f} | "
        f"{ev['precision']:.3f} | {b_time:.1f} | "
        f"{b_ev['recall']:.3f} | {b_ev['precision']:.3f} | {json.dumps(ev['recall_by_pattern'])} |"
    )
    print()
    print("| ring type | recall (found / planted) | precision (correct / detected) | mean best Jaccard |")
    print("|---|---|---|---|")
    for ring_type, e in evaluate_by_type(result.members, truth).items():
        print(
            f"| {ring_type} | {e['recall']:.3f} ({e['n_found']}/{e['n_planted']}) | "
            f"{e['precision']:.3f} ({e['n_correct']}/{e['n_detected']}) | {e['mean_best_jaccard']:.3f} |"
        )


if __name__ == "__main__":
    main()
