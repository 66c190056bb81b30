"""Replaying past credit answers (`riskgraph replay`, `GET /v1/decisions/{id}`) on a scored home:
random persons are answered through the API (each answer audited as a decision), then each
decision is replayed and checked byte-identical; prints the replay times.

    .venv/bin/python bench/bench_replay.py --data DIR [--decisions 200]
    .venv/bin/python bench/bench_replay.py --home HOME [--store-url URL] [--decisions 200]

With --data the pipeline first scores DIR into a temporary home (the embedded store). A replay
reads only its decision's rows from the run's files (riskgraph/row_groups.py), so its time should
not grow with the run's size.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from api.app import create_app
from api.replay import Replayer
from composer.pipeline import run_pipeline
from riskgraph.results import ResultsDB
from riskgraph.settings import Settings

KEY = "bench-approval-key-7f3c9a1e5b2d8604c1e9f7a3b5d20e48"  # passes the key strength rule


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, help="a dataset folder to score first")
    ap.add_argument("--home", type=Path, help="an already scored RiskGraph home")
    ap.add_argument("--store-url", help="the home's store (default: memory://HOME/store)")
    ap.add_argument("--decisions", type=int, default=200)
    args = ap.parse_args()
    if (args.data is None) == (args.home is None):
        ap.error("give exactly one of --data and --home")
    home = args.home or Path(tempfile.mkdtemp(prefix="rg-bench-replay-")) / "home"
    store = args.store_url or f"memory://{home / 'store'}"
    settings = Settings(
        home=home, store_url=store, progress=False, api_scheduler=False, api_keys={KEY: "approval_system"}
    )
    if args.data is not None:
        t0 = time.perf_counter()
        run_pipeline(data=args.data, out=None, settings=settings)
        print(f"pipeline on {args.data}: {time.perf_counter() - t0:.1f} s")

    sent: dict[str, bytes] = {}
    with TestClient(create_app(settings)) as client:
        persons = client.app.state.riskgraph.book.credit.types["person"].ids
        rng = np.random.default_rng(0)
        for i in rng.choice(len(persons), size=min(args.decisions, len(persons)), replace=False):
            r = client.get(f"/v1/credit/person/{persons[int(i)]}", headers={"X-API-Key": KEY})
            r.raise_for_status()
            sent[r.json()["decision_id"]] = r.content
    print(f"{len(persons):,} persons served; {len(sent)} decisions made")

    replayer = Replayer(settings, ResultsDB.of(settings))
    times = []
    for decision_id, body in sent.items():
        t0 = time.perf_counter()
        replayed = replayer.replay(decision_id)
        times.append((time.perf_counter() - t0) * 1000)
        assert replayed.rpartition(b',"replayed_at":')[0] + b"}" == body, decision_id
    times.sort()
    p99 = times[min(len(times) - 1, int(0.99 * len(times)))]
    print(
        f"replay of {len(times)} decisions, byte-identical: median {statistics.median(times):.1f} ms, "
        f"p99 {p99:.1f} ms, max {times[-1]:.1f} ms"
    )


if __name__ == "__main__":
    main()
