"""What inspectors and investigators wait for on a scored home: each listing and graph endpoint
timed in-process (FastAPI's test client, the API's own handlers, roles and audit), its first call
(which may build an index) and the best of three after it.

    .venv/bin/python bench/bench_investigate.py --home HOME [--store-url URL]
    .venv/bin/python bench/bench_investigate.py --data DIR

With --data the pipeline first scores DIR into a temporary home (the embedded store). The
entities asked about are drawn from the served run (numpy seed 0): a random person, the employer
with the most links, the first ring, a person's ID number.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from api.app import create_app
from composer.pipeline import run_pipeline
from riskgraph.settings import Settings

KEYS = {
    "inspector": "bench-inspector-key-2b7e4c91d05a3f68e1c9b7a2d4f60e35",
    "investigator": "bench-investigator-key-9d1f3a7c5e2b8046d3a1f9c7e5b20d48",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, help="a dataset folder to score first")
    ap.add_argument("--home", type=Path, help="an already scored RiskGraph home")
    ap.add_argument("--store-url", help="the home's store (default: memory://HOME/store)")
    args = ap.parse_args()
    if (args.data is None) == (args.home is None):
        ap.error("give exactly one of --data and --home")
    home = args.home or Path(tempfile.mkdtemp(prefix="rg-bench-investigate-")) / "home"
    settings = Settings(
        home=home,
        store_url=args.store_url or f"memory://{home / 'store'}",
        progress=False,
        api_scheduler=False,
        api_keys={key: role for role, key in KEYS.items()},
    )
    if args.data is not None:
        t0 = time.perf_counter()
        run_pipeline(data=args.data, out=None, settings=settings)
        print(f"pipeline on {args.data}: {time.perf_counter() - t0:.1f} s")

    t0 = time.perf_counter()
    with TestClient(create_app(settings)) as client:
        print(f"API up in {time.perf_counter() - t0:.1f} s")
        state = client.app.state.riskgraph
        dataset = state.store.dataset()
        persons = dataset.table("persons")
        rng = np.random.default_rng(0)
        person = persons.iloc[int(rng.integers(len(persons)))]
        employer = ""
        if "employment" in dataset.tables and len(dataset.table("employment")):
            employer = str(dataset.table("employment")["employer_id"].value_counts().index[0])
        insp, inv = {"X-API-Key": KEYS["inspector"]}, {"X-API-Key": KEYS["investigator"]}
        rings = client.get("/v1/rings", headers=inv).json().get("items", [])
        pid = person["person_id"]
        calls = [
            ("risk list, first page", "/v1/risk/person", insp),
            ("risk list, region and grade", f"/v1/risk/person?region={person.get('region', '')}&grade=D", insp),
            ("risk list regions", "/v1/risk/person/regions", insp),
            ("risk export CSV (employers)", "/v1/risk/employer?format=csv", insp),
            ("entity detail, person", f"/v1/entities/person/{pid}", inv),
            ("neighbours, person, 1 hop", f"/v1/entities/person/{pid}/neighbours?hops=1", inv),
            ("neighbours, busiest employer, 2 hops", f"/v1/entities/employer/{employer}/neighbours?hops=2", inv),
            (
                "path person -> busiest employer",
                f"/v1/paths?source_type=person&source_id={pid}&target_type=employer&target_id={employer}&max_hops=4",
                inv,
            ),
            ("rings list", "/v1/rings", inv),
            ("rings of a person", f"/v1/rings?entity_type=person&entity_id={pid}", inv),
            ("alerts", "/v1/alerts", inv),
        ]
        if rings:
            calls.append(("ring detail", f"/v1/rings/{rings[0]['ring_id']}", inv))
        if "id_number" in persons.columns and isinstance(person.get("id_number"), str):
            calls.append(("golden person by ID number", f"/v1/persons/by-id-number/{person['id_number']}", inv))
        print(f"{len(persons):,} person records; person {pid}, employer {employer}")
        print(f"{'endpoint':40s} status  first ms  best of 3 ms")
        for name, url, key in calls:
            times = []
            for _ in range(4):
                t0 = time.perf_counter()
                r = client.get(url, headers=key)
                times.append((time.perf_counter() - t0) * 1000)
            print(f"{name:40s} {r.status_code:6d} {times[0]:9.1f} {min(times[1:]):13.1f}")


if __name__ == "__main__":
    main()
