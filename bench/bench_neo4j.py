"""Neo4j store benchmark: ingest throughput and 2-hop neighbourhood latency.

    python bench/bench_neo4j.py --persons 100000 --seed 7            # synthetic data (synth.generator)
    python bench/bench_neo4j.py --data DIR [--batch-sizes 2000,5000,10000,20000] [--sessions 1] [--repeat 3]
    python bench/bench_neo4j.py --url bolt://127.0.0.1:7691 ...   # another server than the default

Needs a running server (`riskgraph neo4j start`). Ingest is timed on an emptied store, so the
figure is writing the snapshot plus flipping the pointer; emptying the store (deleting the
previous snapshot, which a re-load also does) is timed and printed apart.

JVM benchmark practice: `--warmup` loads (default 1) run first and are printed but not counted;
on a freshly started server the first load also pays the JIT compilation of Neo4j's write path
(~35-40 s of compiler-thread CPU on 2 cores). The summary is the median of the `--repeat` loads.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from graph.dataset import Dataset, load_dataset  # noqa: E402
from graph.neo4j_store import DEFAULT_BATCH_SIZE, DEFAULT_SESSIONS, Neo4jGraphStore  # noqa: E402
from graph.store import EntityRef  # noqa: E402


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def ingest(url: str, dataset: Dataset, batch_size: int, sessions: int = DEFAULT_SESSIONS) -> tuple[float, int, float]:
    """Seconds to load `dataset` into an emptied store, the relationships written, and the seconds
    emptying the store took."""
    store = Neo4jGraphStore(url, batch_size=batch_size, sessions=sessions)
    try:
        started = time.perf_counter()
        store.clear()
        cleared = time.perf_counter() - started
        started = time.perf_counter()
        store.load(dataset)
        elapsed = time.perf_counter() - started
        rels = store._run("MATCH ()-[r]->() RETURN count(r) AS n")[0]["n"]
        return elapsed, rels, cleared
    finally:
        store.close()


def two_hop_latency(url: str, dataset: Dataset, queries: int, limit: int, seed: int) -> list[float]:
    store = Neo4jGraphStore(url)
    try:
        ids = list(dataset.entity_ids("person"))
        rng = random.Random(seed)
        picks = [rng.choice(ids) for _ in range(queries)]
        store.neighbours(EntityRef("person", picks[0]), hops=2, limit=limit)  # warm the plan cache
        times = []
        for pid in picks:
            started = time.perf_counter()
            store.neighbours(EntityRef("person", pid), hops=2, limit=limit)
            times.append((time.perf_counter() - started) * 1000)
        return times
    finally:
        store.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, help="dataset folder (else one is generated)")
    ap.add_argument("--persons", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--url", default="bolt://127.0.0.1:7687")
    ap.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    ap.add_argument("--batch-sizes", default="", help="comma-separated sizes to compare, e.g. 2000,5000,10000")
    ap.add_argument(
        "--sessions",
        type=int,
        default=DEFAULT_SESSIONS,
        help="concurrent sessions writing each table (split by end node)",
    )
    ap.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="loads run first and not counted (on a freshly started server the first one runs on "
        "a cold JVM: JIT compilation of the write path)",
    )
    ap.add_argument("--repeat", type=int, default=3, help="counted loads per batch size (the median is reported)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--limit", type=int, default=200)
    args = ap.parse_args(argv)

    if args.data is None:
        from synth.generator import generate

        args.data = Path(tempfile.mkdtemp(prefix="bench-neo4j-"))
        print(f"generating {args.persons} persons (seed {args.seed}) into {args.data} ...", flush=True)
        generate(persons=args.persons, seed=args.seed, out=args.data, progress=False)
    dataset = load_dataset(args.data)
    rows = sum(dataset.row_counts().values())
    print(f"dataset {args.data}: {rows} rows in {len(dataset.tables)} tables", flush=True)

    sizes = [int(s) for s in args.batch_sizes.split(",") if s] or [args.batch_size]
    for number, size in enumerate(sizes):
        warmups = args.warmup if number == 0 else 0
        rates = []
        for attempt in range(1, warmups + args.repeat + 1):
            load = os.getloadavg()[0]
            seconds, rels, cleared = ingest(args.url, dataset, size, args.sessions)
            kind = "warm-up" if attempt <= warmups else "ingest"
            if attempt > warmups:
                rates.append(rels / seconds)
            print(
                f"{kind} {attempt}/{warmups + args.repeat} batch_size={size:>6} sessions={args.sessions}: "
                f"{rels} relationships in {seconds:.1f}s = {rels / seconds:,.0f} relationships/s "
                f"(emptying the store first: {cleared:.1f}s; load average {load:.2f} -> "
                f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores)",
                flush=True,
            )
        if rates:
            print(
                f"batch_size={size}: median {statistics.median(rates):,.0f} relationships/s over {len(rates)} "
                f"loads (min {min(rates):,.0f}, max {max(rates):,.0f})",
                flush=True,
            )

    reader = Neo4jGraphStore(args.url)  # no cache: the whole dataset read back from the server
    try:
        started = time.perf_counter()
        back = reader.dataset()
        print(
            f"read back (dataset(), {sum(back.row_counts().values())} rows): {time.perf_counter() - started:.1f}s",
            flush=True,
        )
    finally:
        reader.close()

    times = two_hop_latency(args.url, dataset, args.queries, args.limit, args.seed)
    print(
        f"2-hop neighbourhood (limit {args.limit}, {len(times)} random persons): "
        f"p50 {_percentile(times, 0.5):.1f} ms, p99 {_percentile(times, 0.99):.1f} ms, "
        f"mean {statistics.fmean(times):.1f} ms"
    )


if __name__ == "__main__":
    main()
