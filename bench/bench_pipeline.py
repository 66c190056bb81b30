"""Time every pipeline stage with peak memory, on generated data (generation excluded), as a
ratio to a fixed reference workload timed in the same run (absolute times here are noisy):
read every input CSV with pyarrow, one pandas `groupby("person_id").size()` per event table, and
a LightGBM fit of 100 trees (default parameters, 2 threads) on a fixed random 100,000 x 40 matrix.

.venv/bin/python bench/bench_pipeline.py --persons 100000
.venv/bin/python bench/bench_pipeline.py --data DIR
"""

from __future__ import annotations

import argparse
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
    t0 = time.perf_counter()
    result = run_pipeline(data=data, out=work / "out", settings=settings)
    total = time.perf_counter() - t0
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    reference_after = reference_workload(data)
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    rels = sum(n for t, n in result.dataset.row_counts().items() if t in REL_TABLES)
    persons = result.dataset.row_counts()["persons"]
    timings = result.manifest["timings_s"]
    print("| persons | relationship rows | " + " | ".join(timings) + " | total s | peak GiB |")
    print("|" + "---|" * (len(timings) + 4))
    print(
        f"| {persons:,} | {rels:,} | "
        + " | ".join(f"{v:.1f}" for v in timings.values())
        + f" | {total:.1f} | {peak_gib:.2f} |"
    )
    ref = (reference + reference_after) / 2
    print(
        f"reference workload {reference:.2f}s before, {reference_after:.2f}s after; pipeline = {total / ref:.1f}x "
        f"the reference; CPU {cpu.ru_utime + cpu.ru_stime:.0f}s over {total + 2 * ref:.0f}s wall; "
        f"load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
