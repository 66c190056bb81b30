"""Evaluating rule packs over a whole dataset: hits with evidence, and per-entity hit features."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from graph.dataset import Dataset
from rules.cache import Cache
from rules.detectors import DETECTORS
from rules.pack import PackProblem, Rule, RulePack, RulePackError, validate_params

HIT_COLUMNS = ("rule_id", "entity_type", "entity_id", "severity", "evidence", "grade_cap")
DEFAULT_EVIDENCE_LIMIT = 20  # records kept per hit; `n_records` in the evidence gives the full count
OVERRIDES_SOURCE = "settings (rule overrides)"


@dataclass
class RuleResult:
    """What a pack evaluation found: one hit per (rule, entity), and the rules that could not run."""

    hits: pd.DataFrame
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (rule_id, why: missing data)
    disabled: list[str] = field(default_factory=list)  # off in the pack or in settings
    counts: dict[str, int] = field(default_factory=dict)  # rule_id -> hits, for rules that ran
    seconds: dict[str, float] = field(default_factory=dict)  # rule_id -> run time, for rules that ran
    titles: dict[str, tuple[str, str]] = field(default_factory=dict)  # rule_id -> (English, Chinese) title
    codes: dict[str, str] = field(default_factory=dict)  # rule_id -> reason code
    serious: set[str] = field(default_factory=set)  # rule ids marked serious discredit
    # money in the records that fired (every record, not only the kept evidence): entity_type,
    # entity_id, record (a key unique per event), amount; see money_records
    money: pd.DataFrame = field(default_factory=lambda: empty_money())


def empty_hits() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "rule_id": pd.Series([], dtype="str"),
            "entity_type": pd.Series([], dtype="str"),
            "entity_id": pd.Series([], dtype="str"),
            "severity": pd.Series([], dtype="int64"),
            "evidence": pd.Series([], dtype="str"),
            "grade_cap": pd.Series([], dtype="str"),
        }
    )


def empty_money() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "entity_type": pd.Series([], dtype="str"),
            "entity_id": pd.Series([], dtype="str"),
            "record": pd.Series([], dtype="str"),
            "amount": pd.Series([], dtype="float64"),
        }
    )


# The money a record puts at stake (the first column present) and the columns naming the event,
# which make a record counted once even when several rules fire on it.
MONEY_COLUMNS = ("claimed", "amount", "shortfall")
# record column naming another entity the event belongs to (a visit's clinic, ...)
PLACE_COLUMNS = {"clinic_id": "clinic", "pharmacy_id": "pharmacy", "employer_id": "employer"}
PLACE_BY_SOURCE = {"visits": "clinic", "purchases": "pharmacy"}


def _col(records: pd.DataFrame, name: str) -> pd.Series:
    if name in records.columns:
        return records[name].astype(object).where(records[name].notna(), None)
    return pd.Series(None, index=records.index, dtype=object)


def event_keys(records: pd.DataFrame) -> pd.Series:
    """A key naming the event behind each record, the same whichever rule reported it: the visit,
    the purchase, the benefit month, else the month (an employer's arrears); None if unknown."""
    source = _col(records, "source")
    record_id = _col(records, "record_id")
    visit = _col(records, "visit_id").fillna(record_id.where(source == "visits"))
    purchase = _col(records, "purchase_id").fillna(record_id.where(source == "purchases"))
    btype = _col(records, "benefit_type").fillna(_col(records, "place_id").where(source == "benefits"))
    month = _col(records, "month")
    key = pd.Series(None, index=records.index, dtype=object)
    key = key.fillna("month:" + month)
    key = key.where(btype.isna() | month.isna(), "benefit:" + month.astype(str) + "|" + btype.astype(str))
    key = key.where(purchase.isna(), "purchase:" + purchase.astype(str))
    return key.where(visit.isna(), "visit:" + visit.astype(str))


def money_records(rule: Rule, records: pd.DataFrame) -> pd.DataFrame:
    """The money at stake in one rule's records, for the entity hit and for each place named in a
    record (the clinic of a visit, the employer of a benefit month): one row per (entity, event)."""
    money_col = next((c for c in MONEY_COLUMNS if c in records.columns), None)
    if money_col is None or records.empty:
        return empty_money()
    amount = pd.to_numeric(records[money_col], errors="coerce")
    if money_col == "claimed" and "amount" in records.columns:  # unclaimed rows: what was paid
        amount = amount.fillna(pd.to_numeric(records["amount"], errors="coerce"))
    key = event_keys(records)
    parts = [pd.DataFrame({"entity_type": rule.entity_type, "entity_id": records["entity_id"], "record": key})]
    for col, etype in PLACE_COLUMNS.items():
        if col in records.columns and etype != rule.entity_type:
            parts.append(pd.DataFrame({"entity_type": etype, "entity_id": records[col], "record": key}))
    if "place_id" in records.columns and "source" in records.columns:
        etype = records["source"].map(PLACE_BY_SOURCE)
        parts.append(pd.DataFrame({"entity_type": etype, "entity_id": records["place_id"], "record": key}))
    out = pd.concat([p.assign(amount=amount.to_numpy()) for p in parts], ignore_index=True)
    keep = out["entity_type"].notna() & out["entity_id"].notna() & out["record"].notna() & (out["amount"] > 0)
    return out[keep].astype({"entity_type": "str", "entity_id": "str", "record": "str", "amount": "float64"})


def _rules(packs: RulePack | Sequence[RulePack]) -> list[tuple[Rule, str]]:
    packs = [packs] if isinstance(packs, RulePack) else list(packs)
    return [(r, p.file) for p in packs for r in p.rules]


def check_overrides(
    packs: RulePack | Sequence[RulePack],
    overrides: Mapping[str, Mapping[str, Any]] | None,
    disabled: Iterable[str] = (),
) -> None:
    """Raise RulePackError if settings name unknown rules or give invalid parameters."""
    rules = {r.id: r for r, _ in _rules(packs)}
    problems: list[PackProblem] = []
    for rid in sorted(set(disabled) - set(rules)):
        problems.append(PackProblem(OVERRIDES_SOURCE, "cannot disable an unknown rule", rid))
    for rid, params in (overrides or {}).items():
        if rid not in rules:
            problems.append(PackProblem(OVERRIDES_SOURCE, "override for an unknown rule", rid))
            continue
        if not isinstance(params, Mapping):
            problems.append(PackProblem(OVERRIDES_SOURCE, "an override is a mapping of parameters", rid, "params"))
            continue
        try:
            validate_params(rules[rid], {**rules[rid].params, **params}, OVERRIDES_SOURCE)
        except RulePackError as exc:
            problems.extend(exc.problems)
    if problems:
        raise RulePackError(problems)


def evaluate(
    dataset: Dataset,
    pack: RulePack | Sequence[RulePack],
    *,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    disabled: Iterable[str] = frozenset(),
    evidence_limit: int = DEFAULT_EVIDENCE_LIMIT,
) -> RuleResult:
    """Run every enabled rule of the pack(s) over the dataset.

    `overrides` maps rule id -> parameters replacing the pack's (validated like the pack);
    `disabled` names rules not to run. Both are checked before anything runs.
    """
    disabled = set(disabled)
    check_overrides(pack, overrides, disabled)
    overrides = overrides or {}
    frames: list[pd.DataFrame] = []
    money: list[pd.DataFrame] = []
    result = RuleResult(hits=empty_hits())
    cache = Cache(dataset)  # id codes, dates and months shared by all the rules of this run
    for rule, file in _rules(pack):
        result.titles[rule.id] = (rule.title_en, rule.title_zh)
        result.codes[rule.id] = rule.code
        if rule.serious:
            result.serious.add(rule.id)
        if not rule.enabled or rule.id in disabled:
            result.disabled.append(rule.id)
            continue
        det = DETECTORS[rule.detector]
        why = det.missing(dataset)
        if why is not None:
            result.skipped.append((rule.id, why))
            continue
        params = validate_params(rule, {**rule.params, **overrides.get(rule.id, {})}, file)
        t0 = time.perf_counter()
        records = det.run(dataset, params, cache)
        columns = list(rule.evidence or det.evidence)
        hits = _hits(rule, records, columns, evidence_limit)
        money.append(money_records(rule, records))
        result.seconds[rule.id] = time.perf_counter() - t0
        result.counts[rule.id] = len(hits)
        frames.append(hits)
    if frames:
        hits = pd.concat(frames, ignore_index=True)
        result.hits = hits.sort_values(["rule_id", "entity_type", "entity_id"], kind="mergesort").reset_index(drop=True)
        result.money = pd.concat(money, ignore_index=True).drop_duplicates(["entity_type", "entity_id", "record"])
    return result


def _hits(rule: Rule, records: pd.DataFrame, columns: list[str], limit: int) -> pd.DataFrame:
    """One row per entity, its evidence a JSON object {"n_records": N, "records": [first `limit`]}."""
    if records.empty:
        return empty_hits()
    if not records["entity_id"].is_monotonic_increasing:
        records = records.sort_values("entity_id", kind="mergesort")
    ent = records["entity_id"].to_numpy()
    first = np.ones(len(ent), dtype=bool)
    first[1:] = ent[1:] != ent[:-1]
    starts = np.flatnonzero(first)
    n_records = np.diff(np.append(starts, len(ent)))
    rank = np.arange(len(ent)) - np.repeat(starts, n_records)
    kept = records[rank < limit]
    ev = kept[columns].copy()
    for col in columns:
        s = ev[col]
        if pd.api.types.is_datetime64_any_dtype(s):
            ev[col] = s.dt.strftime("%Y-%m-%d")
        elif pd.api.types.is_float_dtype(s):
            ev[col] = s.round(2)
    lines = np.array(ev.to_json(orient="records", lines=True, force_ascii=False).split("\n")[: len(kept)], dtype=object)
    # Join each entity's records into one JSON list in a single pass: JSON text never holds a
    # raw control character (to_json escapes them), so RS (0x1e) safely separates the entities.
    k_first = first[rank < limit]
    k_last = np.append(k_first[1:], True)
    pieces = np.where(k_first, "[", ",").astype(object) + lines + np.where(k_last, "]\x1e", "").astype(object)
    lists = "".join(pieces.tolist()).split("\x1e")[:-1]
    evidence = (
        '{"n_records": ' + n_records.astype(str).astype(object) + ', "records": ' + np.array(lists, dtype=object) + "}"
    )
    entity_ids = ent[starts]
    return pd.DataFrame(
        {
            "rule_id": rule.id,
            "entity_type": rule.entity_type,
            "entity_id": entity_ids,
            "severity": np.int64(rule.severity_level),
            "evidence": evidence,
            "grade_cap": rule.grade_cap or "",
        }
    ).astype(
        {
            "rule_id": "str",
            "entity_type": "str",
            "entity_id": "str",
            "evidence": "str",
            "grade_cap": "str",
            "severity": "int64",
        }
    )


def hit_features(
    hits: pd.DataFrame, entity_type: str, ids: Sequence[str] | pd.Index, *, rule_ids: Sequence[str] | None = None
) -> pd.DataFrame:
    """Per entity (in `ids` order): hit count, max and summed severity, and a 0/1 column per rule.

    Pass `rule_ids` (e.g. every rule of the pack for this entity type) so that the columns do not
    depend on which rules happened to fire.
    """
    index = pd.Index(ids, name="entity_id")
    h = hits[hits["entity_type"] == entity_type]
    h = h[h["entity_id"].isin(index)]
    per = h.groupby("entity_id")["severity"]
    out = pd.DataFrame(
        {
            "rule_hit_count": per.size().reindex(index).fillna(0).astype(np.int64),
            "rule_severity_max": per.max().reindex(index).fillna(0).astype(np.int64),
            "rule_severity_sum": per.sum().reindex(index).fillna(0).astype(np.int64),
        },
        index=index,
    )
    rules = sorted(rule_ids) if rule_ids is not None else sorted(h["rule_id"].unique())
    if rules:
        flags = pd.crosstab(h["entity_id"], h["rule_id"]).clip(upper=1)
        flags = flags.reindex(index=index, columns=rules).fillna(0).astype(np.int64)
        flags.columns = [f"rule_{r}" for r in rules]
        out = out.join(flags)
    return out


def grade_caps(hits: pd.DataFrame) -> pd.DataFrame:
    """The worst grade cap per entity: entity_type, entity_id, grade_cap, rule_ids that set it."""
    h = hits[hits["grade_cap"].fillna("") != ""]
    if h.empty:
        return pd.DataFrame(
            {
                "entity_type": pd.Series([], dtype="str"),
                "entity_id": pd.Series([], dtype="str"),
                "grade_cap": pd.Series([], dtype="str"),
                "rule_ids": pd.Series([], dtype="str"),
            }
        )
    worst = h.groupby(["entity_type", "entity_id"])["grade_cap"].max()  # "D" > "C" > "B" > "A"
    h = h.merge(worst.rename("worst").reset_index(), on=["entity_type", "entity_id"])
    h = h[h["grade_cap"] == h["worst"]]
    ids = h.groupby(["entity_type", "entity_id"])["rule_id"].agg(lambda s: ",".join(sorted(s)))
    return pd.DataFrame({"grade_cap": worst, "rule_ids": ids}).reset_index()
