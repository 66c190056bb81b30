"""Time every pipeline stage with peak memory, on generated data (generation excluded).

.venv/bin/python bench/bench_pipeline.py --persons 100000
.venv/bin/python bench/bench_pipeline.py --data DIR
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from composer.pipeline import run_pipeline
from riskgraph.settings import Settings
from synth.generator import generate

REL_TABLES = ("employment", "contributions", "benefits", "visits", "purchases", "agency_links")


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
    t0 = time.perf_counter()
    result = run_pipeline(data=data, out=work / "out", settings=settings)
    total = time.perf_counter() - t0
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


if __name__ == "__main__":
    main()
