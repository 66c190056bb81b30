"""Credit supervision in a run: the official schemes evaluated beside the model, their outcomes
turned into capped, evidenced hits under the policy in force, and the policies seeded.

- Every employer gets each scheme's grade or list status (rules/schemes.py), saved with the run
  (`features/schemes.parquet`, `schemes.csv` in --out) for the credit answers.
- A grade or status the policy caps (integrity C -> D, listed -> D) becomes a hit whose
  `grade_cap` is that cap: the scoring's rule caps then bind the stricter of the two, leave the
  credit points as the model gave them, and put the cap and its clause first in the reasons.
- Entries imported from the national credit platform (riskgraph lists import) that are still in
  force list an entity as the data would: the wage-arrears list's own entries join its outcome
  (source `import`); entries of other lists become serious hits of their own.
- Early removal reads the corrections accepted on objection (results table `credit_corrections`,
  written by the cases' objection path): the pluggable correction input of rules/schemes.py.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from composer.runs import run_dir
from graph.dataset import Dataset
from graph.factory import open_store
from riskgraph import audit_chain
from riskgraph.errors import NoSnapshot
from riskgraph.results import ResultsDB, now_iso
from riskgraph.results_schema import list_entries_table, policies_table
from riskgraph.settings import Settings
from rules.engine import RuleResult, empty_hits
from rules.exchange import COLUMNS, entries_from_outcomes, known_lists, read_exchange, write_exchange
from rules.policy import Policy, in_force, parse_policy, seed_policies
from rules.schemes import DEFAULT_SCHEME_DIR, SCHEME_TABLE, ListScheme, Scheme, evaluate_schemes, list_ids, load_schemes

SCHEMES_PARQUET = "schemes.parquet"  # the run's scheme outcomes, beside its feature matrices
POLICY_ID = "credit_treatments"  # the policy the credit answers apply
SEVERITY = {"C": 3, "B": 1, "listed": 4}
IMPORTED_SEVERITY = 4


def citation(legal_basis: str) -> str:
    """The document number of a legal basis (人社部令第45号), else the text before its first comma."""
    found = re.search(r"（([^（）]*号)）", legal_basis)
    return found.group(1) if found else legal_basis.split("，")[0]


def audit_row(*, actor: str, role: str, action: str, detail: dict[str, Any]) -> dict[str, Any]:
    """An audit row of a supervision change (the same content fields as api/audit.py's rows)."""
    row: dict[str, Any] = dict.fromkeys(audit_chain.CONTENT_FIELDS)
    row.update(at=now_iso(), actor=actor, role=role, action=action, detail=json.dumps(detail, ensure_ascii=False))
    return row


def policy_row(policy: Policy, *, changed_by: str, note: str = "") -> dict[str, Any]:
    return {
        "policy_id": policy.id,
        "version": policy.version,
        "effective_date": policy.effective_date.isoformat(),
        "body": policy.model_dump_json(),
        "changed_by": changed_by,
        "changed_at": now_iso(),
        "note": note,
    }


def ensure_policies(db: ResultsDB) -> None:
    """Seed each shipped policy whose id has no stored version yet (audited as `policy_seed`)."""
    for policy in seed_policies():
        if db.policy_versions(policy.id):
            continue
        detail = {"policy_id": policy.id, "version": policy.version, "effective_date": str(policy.effective_date)}
        db.write_with_audit(
            policies_table,
            [policy_row(policy, changed_by="seed", note="seeded from rules/policies")],
            [audit_row(actor="riskgraph", role="system", action="policy_seed", detail=detail)],
        )


def stored_policies(db: ResultsDB, policy_id: str = POLICY_ID) -> list[Policy]:
    """Every stored version of a policy, in the order added (seeded first when none is stored)."""
    ensure_policies(db)
    return [
        parse_policy(json.loads(r["body"]), f"policy {r['policy_id']} {r['version']}")
        for r in db.policy_versions(policy_id)
    ]


def supervise(
    dataset: Dataset, rule_result: RuleResult, db: ResultsDB, as_of: pd.Timestamp | None
) -> tuple[RuleResult, pd.DataFrame, Policy | None]:
    """The schemes' outcomes, and the rule result with their capped hits added."""
    schemes = load_schemes(DEFAULT_SCHEME_DIR)
    policy = in_force(stored_policies(db), dt.datetime.now(dt.UTC).date())
    corrections = db.credit_corrections()
    corrections["corrected_date"] = pd.to_datetime(corrections["corrected_date"])
    outcomes = evaluate_schemes(dataset, schemes, as_of, corrections)
    for s in schemes:
        if not dataset.has(SCHEME_TABLE[s.kind]) and dataset.has("employers"):
            dataset.skipped.append(f"scheme {s.name}: no {SCHEME_TABLE[s.kind]} table, so no {s.title_en.lower()}")
    imported = db.list_entries()
    outcomes, others = _with_imported(outcomes, imported, schemes, dataset, as_of)
    hits = _scheme_hits(outcomes, schemes, policy)
    hits = pd.concat([hits, _imported_hits(others, policy)], ignore_index=True)
    if hits.empty:
        return rule_result, outcomes, policy
    titles = dict(rule_result.titles)
    codes = dict(rule_result.codes)
    serious = set(rule_result.serious)
    counts = dict(rule_result.counts)
    for rid, part in hits.groupby("rule_id"):
        rid = str(rid)
        titles[rid] = (str(part["title_en"].iloc[0]), str(part["title_zh"].iloc[0]))
        codes[rid] = f"RG-S-{rid}"
        counts[rid] = len(part)
        if int(part["severity"].iloc[0]) >= IMPORTED_SEVERITY:
            serious.add(rid)
    hits = hits.drop(columns=["title_en", "title_zh"]).astype(empty_hits().dtypes.to_dict())
    merged = pd.concat([rule_result.hits, hits], ignore_index=True) if len(rule_result.hits) else hits
    return (
        replace(rule_result, hits=merged, titles=titles, codes=codes, serious=serious, counts=counts),
        outcomes,
        policy,
    )


def _scheme_hits(outcomes: pd.DataFrame, schemes: list[Scheme], policy: Policy | None) -> pd.DataFrame:
    """A hit per outcome whose status is a finding (integrity B or C, listed), capped by the policy."""
    by_name = {s.name: s for s in schemes}
    rows = []
    found = outcomes[outcomes["status"].isin(list(SEVERITY))]
    for o in found.itertuples(index=False):
        scheme = by_name[o.scheme]
        cap = policy.cap(o.scheme, o.status) if policy else None
        status = "listed" if o.status == "listed" else f"grade {o.status}"
        where = f"{citation(scheme.legal_basis)} {o.clause}"
        records = json.loads(o.evidence)
        evidence = {
            "n_records": len(records),
            "records": records,
            "scheme": o.scheme,
            "status": o.status,
            "clause": o.clause,
            "legal_basis": scheme.legal_basis,
            "criteria": json.loads(o.criteria),
            "listed_date": o.listed_date or None,
            "expires_date": o.expires_date or None,
            "source": o.source,
            "policy": f"{policy.id} {policy.version}" if policy else None,
        }
        rows.append(
            {
                "rule_id": f"{o.scheme}_{o.status}".lower(),
                "entity_type": o.entity_type,
                "entity_id": o.entity_id,
                "severity": SEVERITY[o.status],
                "evidence": json.dumps(evidence, ensure_ascii=False, sort_keys=True),
                "grade_cap": cap or "",
                "title_en": f"{scheme.title_en}: {status} ({where})",
                "title_zh": f"{scheme.title_zh}：{'列入名单' if o.status == 'listed' else o.status + '级'}（{where}）",
            }
        )
    return pd.DataFrame(
        rows,
        columns=["rule_id", "entity_type", "entity_id", "severity", "evidence", "grade_cap", "title_en", "title_zh"],
    )


def in_force_entries(imported: pd.DataFrame, as_of: pd.Timestamp | None, years: dict[str, int]) -> pd.DataFrame:
    """Imported listings still in force on `as_of`: listed by then, not yet removed, and within
    their list's period (`years` per list; lists without one stay until removed)."""
    if imported.empty or as_of is None:
        return imported.iloc[0:0].assign(expires_date=pd.Series(dtype=object))
    e = imported[imported["status"] == "listed"].copy()
    listed = pd.to_datetime(e["listed_date"], errors="coerce")
    removed = pd.to_datetime(e["removed_date"], errors="coerce")
    expires = pd.Series(pd.NaT, index=e.index, dtype="datetime64[ns]")
    for name, n in years.items():  # one vectorised offset per list
        on = (e["list"] == name).to_numpy()
        expires[on] = listed[on] + pd.DateOffset(years=n)
    keep = ((listed <= as_of) & (removed.isna() | (removed > as_of)) & (expires.isna() | (expires > as_of))).to_numpy()
    return e[keep].assign(expires_date=expires[keep].dt.strftime("%Y-%m-%d").fillna(""))


RECORD_FIELDS = ("list", "reason", "legal_basis", "listed_date", "authority", "import_id")


def _with_imported(
    outcomes: pd.DataFrame, imported: pd.DataFrame, schemes: list[Scheme], dataset: Dataset, as_of: pd.Timestamp | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Outcomes with the in-force imported entries of their own lists (status `listed`, source
    `import`, the entry as evidence), and the in-force entries left for hits of their own: those
    of other lists, and those of a list not evaluated here (no table). Joined, not looped: a
    national list may hold many entries."""
    lists = {k: s for k, s in list_ids(schemes).items() if isinstance(s, ListScheme)}
    live = in_force_entries(imported, as_of, {k: s.period.years for k, s in lists.items()})
    if live.empty:
        return outcomes, live
    known = pd.concat(
        [
            pd.DataFrame({"entity_type": t, "entity_id": dataset.entity_ids(t).astype(str)})
            for t in live["entity_type"].unique()
        ]
    )
    live = live.merge(known, on=["entity_type", "entity_id"]).drop_duplicates(["entity_type", "entity_id", "list"])
    live = live.assign(scheme=live["list"].map({k: s.name for k, s in lists.items()}))
    out = outcomes.reset_index(drop=True)
    keys = out[["scheme", "entity_type", "entity_id"]].reset_index(names="row")
    own = live[live["scheme"].notna()].merge(keys, on=["scheme", "entity_type", "entity_id"], how="left")
    take = own[own["row"].notna()]
    take = take[(out.loc[take["row"].astype(int), "status"] != "listed").to_numpy()]
    if len(take):
        rows = take["row"].astype(int).to_numpy()
        clause = take["scheme"].map({s.name: s.listing.clause for s in lists.values()}).to_numpy()
        out.loc[rows, ["status", "source", "removed_date", "removal"]] = ["listed", "import", "", ""]
        out.loc[rows, "listed_date"] = take["listed_date"].to_numpy()
        out.loc[rows, "expires_date"] = take["expires_date"].to_numpy()
        out.loc[rows, "clause"] = clause
        records = take[list(RECORD_FIELDS)].astype(object).where(take[list(RECORD_FIELDS)].notna(), None)
        out.loc[rows, "evidence"] = [
            json.dumps([r], ensure_ascii=False, sort_keys=True, default=str) for r in records.to_dict("records")
        ]
    unmatched = own.loc[own["row"].isna(), ["entity_type", "entity_id", "list"]]
    left = live[live["scheme"].isna()]
    if len(unmatched):
        left = pd.concat([left, live.merge(unmatched, on=["entity_type", "entity_id", "list"])])
    return out, left.drop(columns=["scheme"])


def _imported_hits(entries: pd.DataFrame, policy: Policy | None) -> pd.DataFrame:
    """A serious hit (capped at D) per in-force entry of a list no scheme here evaluates."""
    rows = []
    for e in entries.itertuples(index=False):
        record = {k: getattr(e, k) for k in RECORD_FIELDS}
        cap = (policy.cap(e.list, "listed") if policy else None) or "D"
        rows.append(
            {
                "rule_id": f"imported_{e.list}"[:64],
                "entity_type": e.entity_type,
                "entity_id": e.entity_id,
                "severity": IMPORTED_SEVERITY,
                "evidence": json.dumps({"n_records": 1, "records": [record], "source": "import"}, ensure_ascii=False),
                "grade_cap": cap,
                "title_en": f"On the {e.list} serious-discredit list (imported; {e.legal_basis or 'no legal basis given'})",
                "title_zh": f"列入{e.list}严重失信名单（交换导入；{e.legal_basis or '未注明依据'}）",
            }
        )
    return pd.DataFrame(
        rows,
        columns=["rule_id", "entity_type", "entity_id", "severity", "evidence", "grade_cap", "title_en", "title_zh"],
    )


# -- list exchange (rules/exchange.py) ------------------------------------------------------------


def import_lists(db: ResultsDB, path: Path, *, actor: str, role: str, authority: str = "") -> tuple[str, int]:
    """Validate an exchange file and store its entries with their audit row in one transaction
    (nothing stored when any row is bad); (import id, rows). The next run reads them."""
    schemes = load_schemes(DEFAULT_SCHEME_DIR)
    entries = read_exchange(path, known_lists(schemes))
    import_id = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{hashlib.sha256(path.read_bytes()).hexdigest()[:8]}"
    at = now_iso()
    rows = [
        {k: (v or None) for k, v in e.items()} | {"import_id": import_id, "imported_at": at}
        for e in entries.to_dict("records")
    ]
    for r in rows:
        r["authority"] = r["authority"] or authority or None
    detail = {
        "import_id": import_id,
        "file": path.name,
        "rows": len(rows),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest()[:16],
    }
    db.write_with_audit(
        list_entries_table, rows, [audit_row(actor=actor, role=role, action="list_import", detail=detail)]
    )
    return import_id, len(rows)


def imported_entries(db: ResultsDB) -> pd.DataFrame:
    """The stored imported entries in the exchange layout."""
    e = db.list_entries()
    return e[list(COLUMNS)].fillna("").astype(str) if len(e) else pd.DataFrame(columns=list(COLUMNS))


def export_lists(
    db: ResultsDB, features_dir: Path, dataset: Dataset | None, path: Path, *, actor: str, role: str, authority: str
) -> int:
    """The served run's list entries and grades as an exchange file (audited); rows written."""
    outcomes = pd.read_parquet(features_dir / SCHEMES_PARQUET) if (features_dir / SCHEMES_PARQUET).exists() else None
    if outcomes is None:
        raise NoSnapshot("the served run has no scheme outcomes: run the pipeline first")
    employers = (
        dataset.table("employers") if dataset is not None else pd.DataFrame(columns=["employer_id", "credit_code"])
    )
    codes = pd.Series(
        employers["credit_code"].to_numpy(dtype=object), index=employers["employer_id"].astype(str).to_numpy()
    )
    entries = entries_from_outcomes(outcomes, codes, load_schemes(DEFAULT_SCHEME_DIR), authority)
    n = write_exchange(entries, path)
    detail = {"file": path.name, "rows": n, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()[:16]}
    db.write_with_audit(
        list_entries_table, [], [audit_row(actor=actor, role=role, action="list_export", detail=detail)]
    )
    return n


def export_served_lists(settings: Settings, path: Path, *, authority: str, actor: str = "cli") -> int:
    """`riskgraph lists export`: the served run's entries and grades, credit codes from its snapshot."""
    db = ResultsDB.of(settings)
    run_id = db.served_run_id()
    if run_id is None:
        raise NoSnapshot("nothing is served yet: run `riskgraph pipeline --data DIR --out DIR` first")
    run = db.run(run_id) or {}
    store = open_store(settings.store, settings)
    try:
        dataset = store.dataset(run["snapshot_id"]) if run.get("snapshot_id") else None
    finally:
        store.close()
    features = run_dir(settings, run_id) / "features"
    return export_lists(db, features, dataset, path, actor=actor, role="admin", authority=authority)
