"""Reload time and memory of the served results (the credit book holding every entity, and the
risk lists), and the time to encode answers for random entities, on an already scored home.

.venv/bin/python bench/bench_book.py --home HOME [--store memory://HOME/../store]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import time
import tracemalloc
from pathlib import Path

from api.book import load_book
from graph.factory import open_store
from riskgraph.results import ResultsDB
from riskgraph.settings import Settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--store", default=None, help="the store URL the home was scored with")
    ap.add_argument("--answers", type=int, default=20_000)
    args = ap.parse_args()
    settings = Settings(
        home=args.home, store_url=args.store or f"memory://{args.home.parent / 'store'}", progress=False
    )
    db = ResultsDB.of(settings)
    store = open_store(settings.store, settings)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    t0 = time.perf_counter()
    book = load_book(db=db, settings=settings, dataset_of=lambda sid: store.dataset(sid) if sid else None)
    reload_s = time.perf_counter() - t0
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    keys = [(t, str(i)) for t, cols in book.credit.types.items() for i in cols.ids]
    rng = random.Random(0)
    sample = [keys[rng.randrange(len(keys))] for _ in range(args.answers)]
    t0 = time.perf_counter()
    for t, i in sample:
        entry = book.credit.answer(t, i)
        assert entry is not None and b'"reasons":[{' in entry.body
    per_answer_us = (time.perf_counter() - t0) / len(sample) * 1e6
    print(
        json.dumps(
            {
                "entities": len(book.credit),
                "reload_s": round(reload_s, 2),
                "book_python_heap_mib": round(current / 2**20),
                "reload_peak_python_heap_mib": round(peak / 2**20),
                "process_peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
                "rss_before_gib": round(rss0 / 2**20, 2),
                "encode_one_answer_us": round(per_answer_us, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
