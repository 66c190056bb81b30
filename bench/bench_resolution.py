"""Benchmark person resolution (graph/resolve/): time, peak memory and accuracy against truth.

    python bench/bench_resolution.py --persons 1000000 [--seed 1] [--keep]
    python bench/bench_resolution.py --data DIR
    python bench/bench_resolution.py --persons 20000 --pipeline
    python bench/bench_resolution.py --persons 1000000 --incremental 10000
    python bench/bench_resolution.py --persons 200000 --reuse [--reuse-seed 2]

Generates a synthetic dataset (synth plants ~3% duplicate records, the deaths and custody
registries and their truth) unless --data is given, then times `resolve_persons` (fit by EM and
predict, DuckDB embedded) and `match_registries`, and scores them against truth: pairwise
precision / recall / F1 of the person clusters, registry precision / recall. With --pipeline it
also runs the whole pipeline on the dataset and scores the eligibility rules against the planted
patterns. With --incremental N, N records drawn at random are held back: the rest is resolved
(fitted), then the N are added with `resolve_incremental` (frozen model and term frequencies),
and the clusters are compared with a full re-run using the same frozen parameters. With --reuse
the fitted model is reused as the pipeline reuses the served run's (m and u frozen, the prior and
term frequencies from the data; docs/resolution.md): on the same records (timed, clusters
compared) and, with --reuse-seed S, on another synthetic population of the same size (timed,
scored against its truth). Peak GiB is the process's maximum resident set (DuckDB runs in-process). The machine
may be shared: the load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graph.dataset import load_dataset
from graph.resolve.evaluation import cluster_scores, registry_scores, rule_scores
from graph.resolve.persons import resolve_incremental, resolve_persons
from graph.resolve.registry import match_registries

RULE_PATTERNS = {  # rule -> the planted patterns it should find
    "dup_two_pensions": ("duplicate_pension",),
    "dup_two_enrolments": ("duplicate_enrolment",),
    "ben_pension_after_death": ("pension_after_death", "pension_after_registry_death"),
    "reg_pension_during_custody": ("pension_in_custody",),
}


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--persons", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", type=Path)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--pipeline", action="store_true", help="also run the pipeline and score the rules")
    ap.add_argument("--incremental", type=int, default=0, help="hold back N records and add them incrementally")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--memory-limit", default="6GB")
    ap.add_argument("--reuse", action="store_true", help="resolve again with the fitted model reused")
    ap.add_argument("--reuse-seed", type=int, default=None, help="and on another population (this seed)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-resolution-"))
    data = args.data
    try:
        if data is None:
            from synth.generator import generate

            data = tmp / "data"
            t = time.perf_counter()
            generate(persons=args.persons, seed=args.seed, out=data, progress=False)
            print(f"synth: {time.perf_counter() - t:.1f} s", flush=True)
        t = time.perf_counter()
        dataset = load_dataset(data)
        persons = dataset.table("persons")
        print(f"load: {time.perf_counter() - t:.1f} s, {len(persons):,} person records", flush=True)
        duck = {"threads": args.threads, "memory_limit": args.memory_limit}
        held = persons.sample(args.incremental, random_state=args.seed) if args.incremental else persons.iloc[:0]
        base_rows = persons.drop(held.index)
        t = time.perf_counter()
        resolution = resolve_persons(base_rows if args.incremental else persons, temp_dir=tmp / "duck-persons", **duck)
        resolve_s = time.perf_counter() - t
        if args.incremental:
            t = time.perf_counter()
            step = resolve_incremental(resolution, held, temp_dir=tmp / "duck-incremental", **duck)
            step_s = time.perf_counter() - t
            t = time.perf_counter()
            full = resolve_persons(
                persons,
                temp_dir=tmp / "duck-full",
                frozen=resolution.model_json,
                frozen_tf=resolution.tf_tables,
                previous=resolution.golden,
                **duck,
            )
            full_s = time.perf_counter() - t
            a = step.records.set_index("person_id")["golden_id"].sort_index()
            b = full.records.set_index("person_id")["golden_id"].sort_index()
            print(
                f"incremental: {len(held):,} records onto {len(base_rows):,} in {step_s:.1f} s; "
                f"full re-run with the frozen parameters {full_s:.1f} s; same clusters: {a.equals(b)}",
                flush=True,
            )
            resolution = step
        peak = _peak_gib()
        t = time.perf_counter()
        assert resolution.prepared is not None
        matches = match_registries(
            dataset,
            resolution.prepared,
            resolution.model_json,
            temp_dir=tmp / "duck-registries",
            threshold=0.9,
            threads=args.threads,
            memory_limit=args.memory_limit,
        )
        match_s = time.perf_counter() - t
        clusters = cluster_scores(resolution.records, data)
        registry = registry_scores(matches, data)
        load = os.getloadavg()[0]
        print(json.dumps({"counts": resolution.counts(), "clusters": clusters, "registry": registry}, default=float))
        print(
            "| records | resolve s | registries s | peak GiB | pairwise P / R / F1 | registry P / R | load avg |\n"
            f"| {len(persons):,} | {resolve_s:.1f} | {match_s:.1f} | {max(peak, _peak_gib()):.2f} | "
            f"{clusters['precision']:.3f} / {clusters['recall']:.3f} / {clusters['f1']:.3f} | "
            f"{registry['precision']:.3f} / {registry['recall']:.3f} | {load:.1f} |"
        )
        if args.reuse:
            _reuse(args, tmp, data, persons, resolution, duck)
        if args.pipeline:
            from composer.pipeline import run_pipeline
            from riskgraph.settings import Settings

            settings = Settings(home=tmp / "home", progress=False)
            result = run_pipeline(data=data, out=tmp / "out", settings=settings)
            hits = pd.read_csv(tmp / "out" / "rule_hits.csv", dtype=str)
            print("| rule | patterns | planted | hits | recall | precision |")
            for rule, patterns in RULE_PATTERNS.items():
                s = rule_scores(hits, data, {"|".join(patterns): rule}, patterns={"|".join(patterns): patterns})
                v = s["|".join(patterns)]
                print(
                    f"| {rule} | {', '.join(patterns)} | {v['planted']} | {v['hits']} | "
                    f"{v['recall']:.3f} | {v['precision']:.3f} |"
                )
            print("pipeline timings:", result.manifest["timings_s"])
    finally:
        if args.keep:
            print("kept:", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def _reuse(args: argparse.Namespace, tmp: Path, data: Path, persons: pd.DataFrame, fitted, duck: dict) -> None:
    """Resolve again with the fitted model reused (the pipeline's way), on the same records and,
    with --reuse-seed, on another population: time, clusters, accuracy."""
    reuse = {"frozen": fitted.model_json, "prior_from_data": True, "keep_tf": False, **duck}
    t = time.perf_counter()
    again = resolve_persons(persons, temp_dir=tmp / "duck-reuse", **reuse)
    again_s = time.perf_counter() - t
    same = again.records.equals(fitted.records)
    print(f"reused model, same records: {again_s:.1f} s; clusters and golden ids identical: {same}", flush=True)
    rows = [("same records", len(persons), again_s, again, data)]
    if args.reuse_seed is not None:
        from synth.generator import generate

        other = tmp / "other"
        generate(persons=args.persons, seed=args.reuse_seed, out=other, progress=False)
        ds = load_dataset(other)
        t = time.perf_counter()
        got = resolve_persons(ds.table("persons"), temp_dir=tmp / "duck-other", **reuse)
        got_s = time.perf_counter() - t
        rows.append((f"seed {args.reuse_seed}", len(ds.table("persons")), got_s, got, other))
    print("| reused on | records | resolve s | registries s | pairwise P / R / F1 | registry P / R | load avg |")
    for what, n, secs, res, where in rows:
        ds = load_dataset(where)
        t = time.perf_counter()
        m = match_registries(ds, res.prepared, res.model_json, temp_dir=tmp / "duck-reg2", threshold=0.9, **duck)
        m_s = time.perf_counter() - t
        c, r = cluster_scores(res.records, where), registry_scores(m, where)
        print(
            f"| {what} | {n:,} | {secs:.1f} | {m_s:.1f} | {c['precision']:.3f} / {c['recall']:.3f} / {c['f1']:.3f} | "
            f"{r['precision']:.3f} / {r['recall']:.3f} | {os.getloadavg()[0]:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
