"""Time the projection and the feature stages, and check their output against a reference.

    .venv/bin/python bench/bench_features.py --data /path/to/dataset --save-reference ref.pkl
    .venv/bin/python bench/bench_features.py --pickle /tmp/feat_bench/d1m.pkl --check ref.pkl
    .venv/bin/python bench/bench_features.py --data /path/to/dataset --dump-pickle d.pkl

Stages timed: `Projection(dataset)`, `build_features`, `add_graph_features`; each with wall
seconds, CPU seconds (time.process_time, all threads) and the peak resident memory seen while
it ran (sampled from /proc every 20 ms, so short spikes may be missed). The machine may be
shared: the load average is printed alongside.

A reference holds every feature table (after graph features) and a digest of the projection
(ids, offsets, relationship arrays). `--check` compares column names and order, row order,
dtypes, category levels, and values (np.allclose for floats, exact otherwise).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from features.build import build_features
from features.graph_features import add_graph_features
from graph.dataset import Dataset, load_dataset
from graph.projection import Projection

RTOL = 1e-9
ATOL = 1e-9


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


class _Peak:
    """Samples RSS in a background thread while a stage runs."""

    def __enter__(self) -> _Peak:
        self.start = _rss_mb()
        self.peak = self.start
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss_mb())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, _rss_mb())


def timed(label: str, fn, results: dict):
    w0, c0 = time.perf_counter(), time.process_time()
    with _Peak() as pk:
        out = fn()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    results[label] = {"wall": wall, "cpu": cpu, "peak_rss_mb": pk.peak, "rss_growth_mb": pk.peak - pk.start}
    print(
        f"{label:<20} wall {wall:7.2f} s   cpu {cpu:7.2f} s   peak RSS {pk.peak:8.0f} MB "
        f"(+{pk.peak - pk.start:.0f})   load {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    return out


def projection_digest(proj: Projection) -> dict:
    d: dict = {"n_nodes": proj.n_nodes, "offsets": dict(proj.offsets)}
    for t, ids in proj.ids.items():
        h = hashlib.sha256("\x00".join(map(str, ids)).encode()).hexdigest()
        d[f"ids:{t}"] = (len(ids), str(ids.dtype), ids.name, h)
    for rel, parts in sorted(proj.relationships.items()):
        for i, r in enumerate(parts):
            h = hashlib.sha256(
                np.ascontiguousarray(r.source, dtype=np.int64).tobytes()
                + np.ascontiguousarray(r.target, dtype=np.int64).tobytes()
            ).hexdigest()
            d[f"rel:{rel}:{i}"] = (r.source_type, r.target_type, len(r.source), h)
    return d


def compare(ref: dict, got: dict) -> list[str]:
    problems: list[str] = []
    rp, gp = ref["projection"], got["projection"]
    for k in sorted(set(rp) | set(gp)):
        r, g = rp.get(k), gp.get(k)
        if k.startswith("ids:") and r is not None and g is not None and len(r) == 2:  # older reference
            g = (g[0], g[-1])
        if r != g:
            problems.append(f"projection {k}: {r!r} != {g!r}")
    for t in sorted(set(ref["features"]) | set(got["features"])):
        a, b = ref["features"].get(t), got["features"].get(t)
        if a is None or b is None:
            problems.append(f"{t}: table missing on one side")
            continue
        if list(a.columns) != list(b.columns):
            problems.append(
                f"{t}: columns differ: only ref {sorted(set(a.columns) - set(b.columns))}, "
                f"only new {sorted(set(b.columns) - set(a.columns))}, order same="
                f"{sorted(a.columns) == sorted(b.columns)}"
            )
        if not a.index.equals(b.index) or a.index.name != b.index.name:
            problems.append(f"{t}: index differs")
            continue
        for c in a.columns:
            if c not in b.columns:
                continue
            x, y = a[c], b[c]
            if x.dtype != y.dtype:
                problems.append(f"{t}.{c}: dtype {x.dtype} != {y.dtype}")
            if isinstance(x.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(x.dtype):
                same = x.equals(y) if x.dtype == y.dtype else x.astype(object).equals(y.astype(object))
                if not same:
                    problems.append(f"{t}.{c}: values differ")
                continue
            xv, yv = x.to_numpy(np.float64), y.to_numpy(np.float64)
            if not np.allclose(xv, yv, rtol=RTOL, atol=ATOL, equal_nan=True):
                bad = ~np.isclose(xv, yv, rtol=RTOL, atol=ATOL, equal_nan=True)
                i = int(np.flatnonzero(bad)[0])
                problems.append(
                    f"{t}.{c}: {int(bad.sum())} values differ, e.g. row {a.index[i]}: {xv[i]!r} vs {yv[i]!r}"
                )
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help="dataset folder (loaded with load_dataset)")
    src.add_argument("--pickle", type=Path, help="a pickled graph.dataset.Dataset")
    ap.add_argument("--dump-pickle", type=Path, help="pickle the loaded Dataset here (for faster reruns)")
    ap.add_argument("--save-reference", type=Path, help="save features + projection digest here")
    ap.add_argument("--check", type=Path, help="compare against a saved reference")
    ap.add_argument("--profile", type=Path, help="write a cProfile of the three stages here")
    args = ap.parse_args()

    print(f"load average {os.getloadavg()}, {os.cpu_count()} cpus", flush=True)
    results: dict = {}
    if args.data:
        dataset: Dataset = timed("load_dataset", lambda: load_dataset(args.data), results)
    else:
        with open(args.pickle, "rb") as f:
            dataset = timed("unpickle", lambda: pickle.load(f), results)
    if args.dump_pickle:
        with open(args.dump_pickle, "wb") as f:
            pickle.dump(dataset, f, protocol=5)
    print("rows:", dataset.row_counts(), flush=True)

    prof = None
    if args.profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    proj = timed("Projection", lambda: Projection(dataset), results)
    base = timed("build_features", lambda: build_features(dataset, proj), results)
    feats = timed("add_graph_features", lambda: add_graph_features(base, proj), results)
    if prof is not None:
        prof.disable()
        prof.dump_stats(str(args.profile))
    total_w = sum(results[k]["wall"] for k in ("Projection", "build_features", "add_graph_features"))
    total_c = sum(results[k]["cpu"] for k in ("Projection", "build_features", "add_graph_features"))
    print(f"{'total (3 stages)':<20} wall {total_w:7.2f} s   cpu {total_c:7.2f} s", flush=True)
    print("shapes:", {t: f.shape for t, f in feats.items()}, flush=True)

    got = {"features": feats, "projection": projection_digest(proj)}
    if args.save_reference:
        with open(args.save_reference, "wb") as f:
            pickle.dump(got, f, protocol=5)
        print(f"reference saved to {args.save_reference}")
    if args.check:
        with open(args.check, "rb") as f:
            ref = pickle.load(f)
        problems = compare(ref, got)
        if problems:
            print(f"CHECK FAILED ({len(problems)} problems):")
            for p in problems[:60]:
                print("  ", p)
            return 1
        n = sum(f.shape[1] for f in feats.values())
        print(
            f"CHECK OK: {n} columns over {len(feats)} tables match the reference "
            f"(rtol={RTOL}, atol={ATOL}); projection digest identical"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
