"""Benchmark the rules engine: time and peak memory of evaluate() with the default pack.

    python bench/bench_rules.py --persons 1000000 [--seed 1] [--keep]
    python bench/bench_rules.py --data DIR
    python bench/bench_rules.py --persons 50000 --seed 1 --precision

With --precision (the dataset needs truth/truth.csv, as synth.generator writes), also prints each
rule's hits and precision against the planted truth: the share of hit entities that are planted
fraud of any pattern, and of the rule's own pattern(s) (RULE_PATTERNS), the recall of that
pattern, and which patterns the hits carry.

With --persons, generates a synthetic dataset with synth.generator into a temporary folder
(deleted afterwards unless --keep). Generation and loading are timed separately and are not
part of the evaluate figure. Prints per-rule seconds and hits, then one markdown table row.
The machine may be shared: the load average is printed with the figures, and CPU seconds of
the process next to wall seconds.
"""

from __future__ import annotations

import argparse
import collections
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd

from graph.dataset import load_dataset
from rules import default_pack, evaluate

HEADER = (
    "| persons | rows | load s | evaluate s (wall) | evaluate s (CPU) | peak RSS GiB (process) "
    "| peak RSS GiB (during evaluate) | hits | load average (1 min) |"
)


# The planted pattern(s) of synth.generator each default rule is meant to catch (None: no planted
# pattern corresponds; precision is then against any pattern only).
RULE_PATTERNS: dict[str, tuple[str, ...] | None] = {
    "med_same_day_multi_clinic": ("multi_hospital",),
    "med_monthly_multi_clinic": ("multi_hospital",),
    "med_split_admission": ("split_admission",),
    "med_activity_during_stay": ("phantom_stay",),
    "med_clinic_beds_exceeded": ("phantom_stay",),
    "med_over_prescribing": ("over_prescribing",),
    "med_overlapping_supply": ("over_prescribing",),
    "any_activity_after_death": ("pension_after_death",),
    "ben_pension_after_death": ("pension_after_death",),
    "ben_unemployment_while_contributing": ("unemployment_while_employed",),
    "ben_fraud_over_10000": ("pension_after_death", "unemployment_while_employed"),
    "ben_claim_after_ineligible_6m": ("pension_after_death", "unemployment_while_employed"),
    "emp_contribution_arrears": ("arrears",),
    "emp_base_below_wage": None,
    "emp_headcount_inflation": ("fake_enrolment",),
    "emp_fake_enrolment_serious": ("fake_enrolment",),
    "agency_shell_routing": ("fake_enrolment",),
}


def precision_table(hits: pd.DataFrame, truth: pd.DataFrame, rules: dict[str, str], counts: dict[str, int]) -> str:
    """Markdown: per rule, hits, precision (any planted pattern / own pattern), recall, patterns hit."""
    planted = truth.groupby(["entity_type", "entity_id"])["pattern"].agg(set).to_dict()
    lines = [
        "| rule | entity | hits | precision (any pattern) | pattern(s) | precision (its pattern) "
        "| recall (its pattern) | patterns among the hits |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for rid, etype in rules.items():
        h = hits[hits["rule_id"] == rid]
        if rid not in counts:
            lines.append(f"| `{rid}` | | skipped | | | | | |")
            continue
        keys = list(zip(h["entity_type"], h["entity_id"]))
        n = len(keys)
        any_hit = sum(k in planted for k in keys)
        pats = RULE_PATTERNS.get(rid)
        seen = collections.Counter(p for k in keys for p in planted.get(k, ()))
        seen_txt = ", ".join(f"{p} {c}" for p, c in seen.most_common()) or "none"

        def pct(a: int, b: int) -> str:
            return f"{a / b:.0%} ({a}/{b})" if b else "n/a"

        if pats is None:
            own = rec = "n/a"
        else:
            own = pct(sum(bool(planted.get(k, set()) & set(pats)) for k in keys), n)
            t = truth[truth["pattern"].isin(pats) & (truth["entity_type"] == etype)]
            targets = set(zip(t["entity_type"], t["entity_id"]))
            rec = pct(len(targets & set(keys)), len(targets))
        lines.append(
            f"| `{rid}` | {etype} | {n} | {pct(any_hit, n)} | {', '.join(pats) if pats else '-'} | {own} "
            f"| {rec} | {seen_txt} |"
        )
    return "\n".join(lines)


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark to the current RSS (Linux >= 4.0), so that the peak seen
    after evaluate() is evaluate's own (with the dataset in memory), not the loader's."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _vm_hwm_gib() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return None


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--persons", type=int, default=100_000, help="generate a synthetic dataset of N persons")
    src.add_argument("--data", type=Path, help="an existing dataset folder")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the generated dataset (its path is printed)")
    ap.add_argument("--precision", action="store_true", help="also score the hits against truth/truth.csv")
    args = ap.parse_args(argv)

    tmp: Path | None = None
    data = args.data
    persons = None
    if data is None:
        from synth.generator import generate

        persons = args.persons
        tmp = Path(tempfile.mkdtemp(prefix="bench_rules_"))
        data = tmp / "data"
        t0 = time.perf_counter()
        generate(persons=persons, seed=args.seed, out=data, progress=False)
        print(f"generated {persons:,} persons in {time.perf_counter() - t0:.1f} s: {data}", flush=True)
    try:
        t0 = time.perf_counter()
        ds = load_dataset(data)
        t_load = time.perf_counter() - t0
        rows = sum(ds.row_counts().values())
        persons = persons if persons is not None else len(ds.table("persons"))
        print(f"loaded {rows:,} rows in {t_load:.1f} s: {ds.row_counts()}", flush=True)
        peak_load = _peak_gib()
        reset = _reset_peak()

        pack = default_pack()
        load_before = os.getloadavg()[0]
        cpu0, t0 = _cpu_s(), time.perf_counter()
        result = evaluate(ds, pack)
        t_eval, cpu_eval = time.perf_counter() - t0, _cpu_s() - cpu0
        load_after = os.getloadavg()[0]
        peak_eval = _vm_hwm_gib() if reset else None
        peak = max(_peak_gib(), peak_load)

        print(f"\n{'rule':40s} {'seconds':>8s} {'hits':>8s}")
        for rule in pack.rules:
            if rule.id in result.seconds:
                print(f"{rule.id:40s} {result.seconds[rule.id]:8.2f} {result.counts[rule.id]:8,d}")
            else:
                print(f"{rule.id:40s} {'-':>8s} {'skipped':>8s}")
        rest = t_eval - sum(result.seconds.values())
        print(f"{'(validation, concat and sort of hits)':40s} {rest:8.2f}")
        print(
            f"\nevaluate: {t_eval:.1f} s wall, {cpu_eval:.1f} s CPU; {len(result.hits):,} hits; "
            f"load average {load_before:.1f} before, {load_after:.1f} after (2 cores: > 2 means contention)\n"
        )
        print(HEADER)
        print("|" + "---|" * (HEADER.count("|") - 1))
        eval_peak = f"{peak_eval:.2f}" if peak_eval is not None else "n/a"
        print(
            f"| {persons:,} | {rows:,} | {t_load:.0f} | {t_eval:.1f} | {cpu_eval:.1f} | {peak:.2f} | {eval_peak} "
            f"| {len(result.hits):,} | {load_before:.1f} / {load_after:.1f} |"
        )
        if args.precision:
            truth_file = Path(data) / "truth" / "truth.csv"
            truth = pd.read_csv(truth_file, dtype=str, keep_default_na=False)
            print(f"\nprecision against {truth_file} ({len(truth):,} planted entity-patterns):\n")
            print(precision_table(result.hits, truth, {r.id: r.entity_type for r in pack.rules}, result.counts))
    finally:
        if tmp is not None and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
