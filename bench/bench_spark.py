"""The Spark engine against the pandas engine: stage times, peak memory and parity, on generated
data (generation excluded) or a dataset folder.

Stages (default): the features stage on each engine, the Spark part of it alone (edge DataFrames,
degree, 2-hop and shared-identifier counts), and the largest differences between the engines.
--end-to-end: `run_pipeline` once per engine, each training its own models, and the largest
score difference, with the rule hits and rings compared as sets.

.venv/bin/python bench/bench_spark.py --persons 10000 --master 'local[2]' --partitions 4
.venv/bin/python bench/bench_spark.py --persons 10000 --end-to-end
.venv/bin/python bench/bench_spark.py --data DIR --partitions 8
.venv/bin/python bench/bench_spark.py --persons 500000 --only spark --driver-memory 4g
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

from composer.engines.pandas import PandasEngine
from composer.engines.spark import GRAPH_COUNT_COLUMNS, SparkEngine
from composer.engines.spark_session import graphframes_jars, spark_session
from composer.pipeline import run_pipeline
from graph.dataset import load_dataset
from graph.projection import Projection
from riskgraph.settings import Settings, SparkSettings
from synth.generator import generate


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and its live descendants (the Spark JVM and
    its Python workers): comparable across runs on a shared machine, unlike wall time."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    total = own.ru_utime + own.ru_stime
    for pid in _descendants():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _descendants() -> set[int]:
    """Live descendants of this process, from /proc."""
    parent: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(stat.parent.name)] = int(fields[1])
    mine, grew = {os.getpid()}, True
    while grew:
        more = {p for p, pp in parent.items() if pp in mine} - mine
        grew = bool(more)
        mine |= more
    return mine - {os.getpid()}


def peak_mib() -> tuple[float, float]:
    """Peak RSS of this process, and the sum of the peaks (VmHWM) of its live descendants (the
    Spark JVM and its Python workers): call it before the session stops."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tree = 0.0
    for pid in _descendants():
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        hwm = [line for line in status.splitlines() if line.startswith("VmHWM:")]
        tree += int(hwm[0].split()[1]) / 1024 if hwm else 0
    return own, tree


class TreeRss:
    """The largest sum of memory over this process and its descendants (the Spark JVM, its Python
    workers, forked stage workers), sampled every `every` seconds in a thread: PSS (each shared
    page divided among the processes that map it, so a forked worker's copy-on-write pages are
    not counted twice), and the plain sum of RSS beside it, an upper bound."""

    def __init__(self, every: float = 0.5) -> None:
        self.peak_mib = 0.0
        self.peak_rss_mib = 0.0
        self.started = time.perf_counter()
        self.peak_at = 0.0  # seconds after the start
        self.peak_parts: dict[str, float] = {}  # MiB of PSS at the peak: this process, the JVM, the others
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            pss = rss = 0
            parts: dict[str, float] = {}
            for pid in _descendants() | {os.getpid()}:
                try:
                    rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
                    command = Path(f"/proc/{pid}/comm").read_text().strip()
                except OSError:
                    continue
                fields = dict(line.split(":", 1) for line in rollup.splitlines()[1:] if ":" in line)
                pss += int(fields.get("Pss", "0 kB").split()[0])
                rss += int(fields.get("Rss", "0 kB").split()[0])
                kind = "this process" if pid == os.getpid() else "JVM" if command == "java" else "other processes"
                parts[kind] = parts.get(kind, 0.0) + int(fields.get("Pss", "0 kB").split()[0]) / 1024
            if pss / 1024 > self.peak_mib:
                self.peak_mib, self.peak_parts = pss / 1024, parts
                self.peak_at = time.perf_counter() - self.started
            self.peak_rss_mib = max(self.peak_rss_mib, rss / 1024)

    def describe(self, timings: dict[str, float], wall: float) -> str:
        """Where the peak was: the pipeline stage then running and the parts of the peak. The
        stages are timed after the engine has started (the Spark session), so they are taken to
        end with the run."""
        end, stage = wall - sum(timings.values()), "the engine's start"
        for name, seconds in timings.items():
            if self.peak_at <= end:
                break
            end += seconds
            stage = name
        parts = ", ".join(f"{k} {v:.0f} MiB" for k, v in sorted(self.peak_parts.items()))
        return f"the peak came {self.peak_at:.0f} s in, during {stage}: {parts}"

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_mib


def only(data: Path, engine: str, conf: SparkSettings, tmp: Path) -> None:
    """One `run_pipeline` with one engine: wall time, stage times, the process tree's peak RSS."""
    settings = Settings(home=tmp / engine / "home", progress=False, spark=conf)
    rss = TreeRss()
    t0, load0 = time.perf_counter(), os.getloadavg()[0]
    result = run_pipeline(data=data, out=tmp / engine / "out", settings=settings, engine=engine)
    wall = time.perf_counter() - t0
    peak = rss.stop()
    print(f"{engine}: {wall:.1f}s wall; stages {result.manifest['timings_s']}")
    print(f"worker stages {result.manifest.get('worker_timings_s')}")
    print(f"entities {len(result.scores):,}, rule hits {len(result.rule_hits):,}, ring members {len(result.rings):,}")
    print(
        f"peak memory of the process tree (sampled every 0.5 s): PSS {peak:.0f} MiB "
        f"(sum of RSS, counting shared pages once per process: {rss.peak_rss_mib:.0f} MiB)"
    )
    print(rss.describe(result.manifest["timings_s"], wall))
    print(f"peak RSS of this process at the end of each stage (MiB): {result.manifest.get('peak_rss_mib')}")
    print(f"load average: {load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")


def read(data: Path, conf: SparkSettings) -> None:
    """Reading and validation: the pandas reader, then the Spark reader (session started first)."""
    t0 = time.perf_counter()
    want = load_dataset(data)
    t_pandas = time.perf_counter() - t0
    jars = graphframes_jars()
    engine = SparkEngine(spark_session(conf, jars, app="bench"), conf, jars)
    rss = TreeRss()
    t0, c0 = time.perf_counter(), cpu_seconds()
    got = engine.load_dataset(data)
    t_spark, c_spark = time.perf_counter() - t0, cpu_seconds() - c0
    peak = rss.stop()
    engine.close()
    same = all(got.tables[n].equals(t) for n, t in want.tables.items()) and set(got.tables) == set(want.tables)
    rows = sum(len(t) for t in want.tables.values())
    print(f"rows {rows:,}: pandas reader {t_pandas:.1f}s; Spark reader {t_spark:.1f}s wall, {c_spark:.0f} CPU s")
    print(f"same typed tables: {same}; peak PSS of the process tree during the Spark read {peak:.0f} MiB")
    print(f"load average: {os.getloadavg()[0]:.1f}")


def largest_difference(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> float:
    worst = 0.0
    for t, f in a.items():
        for col in f.columns:
            if pd.api.types.is_numeric_dtype(f[col]) and not isinstance(f[col].dtype, pd.CategoricalDtype):
                x, y = f[col].to_numpy(np.float64), b[t][col].to_numpy(np.float64)
                same_nan = np.isnan(x) & np.isnan(y)
                worst = max(worst, float(np.nanmax(np.where(same_nan, 0, np.abs(x - y)), initial=0)))
    return worst


def stages(data: Path, conf: SparkSettings) -> None:
    dataset = load_dataset(data)
    proj = Projection(dataset)
    t0 = time.perf_counter()
    want = PandasEngine().features(dataset, proj)
    t_pandas = time.perf_counter() - t0
    t0 = time.perf_counter()
    jars = graphframes_jars()
    engine = SparkEngine(spark_session(conf, jars, app="bench"), conf, jars)
    t_session = time.perf_counter() - t0
    t0 = time.perf_counter()
    engine.graph_counts(dataset, proj)  # the first job also warms the JVM up
    t_first = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), cpu_seconds()
    engine.graph_counts(dataset, proj)
    t_counts, c_counts = time.perf_counter() - t0, cpu_seconds() - c0
    t0 = time.perf_counter()
    got = engine.features(dataset, proj)
    t_spark = time.perf_counter() - t0
    own, child = peak_mib()
    engine.close()
    edges = len(proj.edges)
    print(
        f"persons {len(dataset.tables['persons']):,}, edges {edges:,}, master {conf.master}, partitions {conf.shuffle_partitions}"
    )
    print(
        f"features stage: pandas {t_pandas:.1f}s, spark {t_spark:.1f}s (driver features + Spark counts); session start {t_session:.1f}s"
    )
    print(
        f"Spark counts alone (warm): {t_counts:.1f}s wall, {c_counts:.1f} CPU s (driver + JVM + workers) ="
        f" {1e6 * c_counts / max(edges, 1):.1f} CPU us per edge; first (cold) call {t_first:.1f}s wall"
    )
    print(f"load average during the run: {os.getloadavg()[0]:.1f}")
    print(
        f"largest feature difference: {largest_difference(want, got):.3g} (columns from Spark: {', '.join(GRAPH_COUNT_COLUMNS)})"
    )
    print(f"peak RSS: driver {own:.0f} MiB, Spark JVM and workers (sum of their peaks) {child:.0f} MiB")


def end_to_end(data: Path, conf: SparkSettings, tmp: Path) -> None:
    results = {}
    for name in ("pandas", "spark"):
        settings = Settings(home=tmp / name / "home", progress=False, spark=conf)
        t0 = time.perf_counter()
        results[name] = run_pipeline(data=data, out=tmp / name / "out", settings=settings, engine=name)
        print(f"{name}: {time.perf_counter() - t0:.1f}s; stages {results[name].manifest['timings_s']}")
    p, s = results["pandas"], results["spark"]
    key = ["entity_type", "entity_id"]
    ps, ss = p.scores.sort_values(key).reset_index(drop=True), s.scores.sort_values(key).reset_index(drop=True)
    assert ps[key].equals(ss[key])
    print(
        f"entities {len(ps):,}: largest risk_score difference {np.abs(ps['risk_score'] - ss['risk_score']).max():.3g}"
    )
    hits = ["rule_id", "entity_type", "entity_id"]
    same_hits = set(map(tuple, p.rule_hits[hits].to_numpy())) == set(map(tuple, s.rule_hits[hits].to_numpy()))
    rings = ["ring_id", "ring_type", "entity_type", "entity_id"]
    same_rings = set(map(tuple, p.rings[rings].to_numpy())) == set(map(tuple, s.rings[rings].to_numpy()))
    print(
        f"rule hits {len(p.rule_hits):,} identical: {same_hits}; ring members {len(p.rings):,} identical: {same_rings}"
    )
    own, _ = peak_mib()
    print(f"peak RSS of the driver: {own:.0f} MiB (the Spark JVM is not included: see --stages)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--persons", type=int, default=10_000)
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--driver-memory", default="2g")
    ap.add_argument("--end-to-end", action="store_true")
    ap.add_argument("--only", choices=("pandas", "spark"), help="one end-to-end run with this engine, with peak RSS")
    ap.add_argument("--read", action="store_true", help="reading and validation only, both readers")
    ap.add_argument("--keep", type=Path, default=None, help="generate the data into this folder and keep it")
    a = ap.parse_args()
    conf = SparkSettings(master=a.master, shuffle_partitions=a.partitions, driver_memory=a.driver_memory)
    with tempfile.TemporaryDirectory() as tmp:
        data = a.data
        if data is None:
            data = a.keep or Path(tmp) / "data"
            t0 = time.perf_counter()
            generate(persons=a.persons, seed=1, out=data, progress=False)
            print(f"generated {a.persons:,} persons in {time.perf_counter() - t0:.0f}s")
        if a.read:
            read(data, conf)
        elif a.only:
            only(data, a.only, conf, Path(tmp))
        elif a.end_to_end:
            end_to_end(data, conf, Path(tmp))
        else:
            stages(data, conf)


if __name__ == "__main__":
    main()
