"""Time every pipeline stage with peak memory, on generated data (generation excluded), as a
ratio to a fixed reference workload timed in the same run (absolute times here are noisy):
read every input CSV with pyarrow, one pandas `groupby("person_id").size()` per event table, and
a LightGBM fit of 100 trees (default parameters, 2 threads) on a fixed random 100,000 x 40 matrix.

.venv/bin/python bench/bench_pipeline.py --persons 100000 [--runs 2]
.venv/bin/python bench/bench_pipeline.py --data DIR

With --runs N the pipeline runs N times on the same home and data, one row each: the first run
fits the person-resolution model, the later ones reuse it (docs/resolution.md), as nightly
re-runs do. The ratio is that of the last run.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import tempfile
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pyarrow.csv as pacsv

from composer.pipeline import run_pipeline
from riskgraph.settings import Settings
from synth.generator import generate

REL_TABLES = ("employment", "contributions", "benefits", "visits", "purchases", "agency_links")


def reference_workload(data: Path) -> float:
    """Seconds of the fixed reference workload on the dataset folder `data`."""
    t0 = time.perf_counter()
    tables = {p.stem: pacsv.read_csv(p) for p in sorted(data.glob("*.csv"))}
    for name in REL_TABLES:
        if name in tables and "person_id" in tables[name].column_names:
            tables[name].select(["person_id"]).to_pandas().groupby("person_id").size()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100_000, 40))
    y = (X[:, 0] + rng.normal(size=100_000) > 0).astype(int)
    lgb.train({"objective": "binary", "num_threads": 2, "verbose": -1}, lgb.Dataset(X, y), num_boost_round=100)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--persons", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", type=Path, default=None, help="use this dataset instead of generating one")
    ap.add_argument("--runs", type=int, default=1, help="runs on the same home (the later ones reuse the model)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rg-bench-"))
    data = args.data
    if data is None:
        data = work / "data"
        t0 = time.perf_counter()
        generate(persons=args.persons, seed=args.seed, out=data, progress=False)
        print(f"generated {args.persons:,} persons in {time.perf_counter() - t0:.1f}s")
    settings = Settings(home=work / "home", store_url=f"memory://{work / 'store'}", progress=False)
    reference = reference_workload(data)
    rows = []
    for _ in range(max(args.runs, 1)):
        t0 = time.perf_counter()
        result = run_pipeline(data=data, out=work / "out", settings=settings)
        total = time.perf_counter() - t0
        fitted = (result.manifest.get("resolution") or {}).get("model", {}).get("fitted")
        rows.append((result.manifest["timings_s"], total, fitted))
        print(f"peak RSS (MiB) of this process at the end of each stage: {result.manifest.get('peak_rss_mib')}")
        counts = result.dataset.row_counts()
        del result  # a nightly re-run does not hold the previous run's results: neither does this
        gc.collect()
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    reference_after = reference_workload(data)
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    rels = sum(n for t, n in counts.items() if t in REL_TABLES)
    persons = counts["persons"]
    timings = rows[0][0]
    print("| persons | relationship rows | resolution model | " + " | ".join(timings) + " | total s | peak GiB |")
    print("|" + "---|" * (len(timings) + 5))
    for run_timings, total, fitted in rows:
        print(
            f"| {persons:,} | {rels:,} | {'fitted' if fitted else 'reused' if fitted is False else '-'} | "
            + " | ".join(f"{v:.1f}" for v in run_timings.values())
            + f" | {total:.1f} | {peak_gib:.2f} |"
        )
    ref = (reference + reference_after) / 2
    print(
        f"reference workload {reference:.2f}s before, {reference_after:.2f}s after; last pipeline run = {total / ref:.1f}x "
        f"the reference; CPU {cpu.ru_utime + cpu.ru_stime:.0f}s over {sum(r[1] for r in rows) + 2 * ref:.0f}s wall; "
        f"load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
