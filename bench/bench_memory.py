"""Where the pipeline's memory goes: one `run_pipeline` (memory store, pandas engine) with the main
process's resident memory before and after each of the composer's main calls, and its peak so far
(`VmRSS` and `VmHWM` of /proc/self/status). Forked workers (resolution, rules, report) are not in
these figures; `bench_spark.py --only pandas` gives the whole process tree's peak.

.venv/bin/python bench/bench_memory.py --data DIR
"""

from __future__ import annotations

import argparse
import functools
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import composer.pipeline as pipeline
from riskgraph.settings import Settings

# the composer's calls measured, as named in composer/pipeline.py, in the order they run
CALLS = (
    "with_golden",
    "Projection",
    "find_rings",
    "assemble_rings",
    "supervise",
    "training_rows",
    "with_signals",
    "model_entity_type",
    "finish_entity_type",
    "explain_types",
    "expand_scores",
    "current_subjects",
    "build_alerts",
    "save_feature_matrices",
    "output_files",
    "write_results",
)


def _status_mib() -> tuple[int, int]:
    """(resident, peak resident) MiB of this process."""
    got = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, value = line.split(":", 1)
            got[key] = int(value.split()[0]) // 1024
    return got["VmRSS"], got["VmHWM"]


@dataclass
class Measured:
    calls: int = 0
    seconds: float = 0.0
    growth_mib: int = 0  # resident memory after minus before, summed over the calls
    peak_mib: int = 0  # the process's peak so far when the call returned


def _measured(name: str, fn: Callable[..., Any], into: dict[str, Measured], main_pid: int) -> Callable[..., Any]:
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        if os.getpid() != main_pid:  # a forked worker's own calls are not this process's
            return fn(*args, **kwargs)
        before, _ = _status_mib()
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            after, peak = _status_mib()
            m = into.setdefault(name, Measured())
            m.calls += 1
            m.seconds += time.perf_counter() - t0
            m.growth_mib += after - before
            m.peak_mib = peak

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, required=True, help="a dataset folder (riskgraph synth)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rg-memory-"))
    settings = Settings(home=work / "home", store_url=f"memory://{work / 'store'}", progress=False)
    measured: dict[str, Measured] = {}
    for name in CALLS:
        setattr(pipeline, name, _measured(name, getattr(pipeline, name), measured, os.getpid()))
    t0 = time.perf_counter()
    result = pipeline.run_pipeline(data=args.data, out=work / "out", settings=settings)
    print(f"{result.dataset.row_counts()['persons']:,} person records in {time.perf_counter() - t0:.1f} s")
    print(f"peak RSS (MiB) at the end of each stage: {result.manifest['peak_rss_mib']}")
    print("| call | calls | seconds | resident memory after minus before (MiB) | peak so far (MiB) |")
    print("|---|---|---|---|---|")
    for name in CALLS:
        if name in measured:
            m = measured[name]
            print(f"| {name} | {m.calls} | {m.seconds:.1f} | {m.growth_mib:+,} | {m.peak_mib:,} |")


if __name__ == "__main__":
    main()
