"""Official credit schemes as versioned YAML presets (rules/schemes/*.yaml), evaluated with evidence.

Two kinds, beside the rule packs and validated as strictly (every problem named with its file,
criterion and field):

- `integrity_grade`: a grade from criteria (the enterprise labour-security integrity grade A/B/C,
  人社部规〔2016〕1号): the worst grade of the criteria an entity meets, else the best grade;
- `discredit_list`: a serious-discredit list (the wage-arrears list, 人社部令第45号): listing
  criteria, a publication period, and early removal (信用修复) after a correction and a fulfilled
  commitment.

A scheme never reads the model: its grade sits beside the model's grade, and the policy
(rules/policy.py) maps it onto the A-D scale. Evaluation is vectorised over the tables; only the
entities a criterion found get evidence records.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from graph.dataset import Dataset
from riskgraph.errors import InvalidRulePack
from rules.pack import PackProblem

DEFAULT_SCHEME_DIR = Path(__file__).parent / "schemes"
SCHEME_GRADES = ("A", "B", "C")
LIST_STATUSES = ("listed", "removed", "expired", "not_listed")
OUTCOME_COLUMNS = (
    "entity_type",
    "entity_id",
    "scheme",
    "scheme_version",
    "status",  # the scheme's grade (A/B/C) or list status (listed/removed/expired/not_listed)
    "clause",
    "criteria",  # JSON list of {id, clause, title_en, title_zh}
    "evidence",  # JSON list of records (inspections, wage-arrears months, commitments)
    "listed_date",
    "expires_date",
    "removed_date",
    "removal",  # expired | early_removal | ""
    "source",  # data | import
    "as_of",  # the day evaluated (YYYY-MM-DD)
)


class SchemeError(InvalidRulePack):
    """A scheme preset is invalid; nothing was evaluated."""

    code = "invalid_scheme"

    def __init__(self, problems: list[PackProblem]) -> None:
        self.problems = problems
        super().__init__("invalid scheme preset, nothing was evaluated:\n  " + "\n  ".join(map(str, problems)))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- criterion tests and their parameters ------------------------------------------------------


class ViolationsAtLeast(_Strict):
    count: int = Field(ge=1)


class FindingIn(_Strict):
    findings: list[str] = Field(min_length=1)


class UncorrectedAfter(_Strict):
    days: int = Field(ge=1)
    min_severity: int = Field(1, ge=1, le=3)


class WageGroupIncident(_Strict):
    pass


class ArrearsThreshold(_Strict):
    min_months: int = Field(ge=1)
    min_amount: float = Field(ge=0)
    min_persons: int = Field(ge=1)


TESTS: dict[str, type[_Strict]] = {
    "violations_at_least": ViolationsAtLeast,
    "finding_in": FindingIn,
    "uncorrected_after": UncorrectedAfter,
    "wage_group_incident": WageGroupIncident,
    "arrears_threshold": ArrearsThreshold,
}
TESTS_OF_KIND = {
    "integrity_grade": ("violations_at_least", "finding_in", "uncorrected_after", "wage_group_incident"),
    "discredit_list": ("arrears_threshold", "wage_group_incident"),
}


class Criterion(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]{2,63}$")
    grade: Literal["A", "B", "C"] | None = None  # integrity grades only
    clause: str = Field(min_length=1)
    title_zh: str = Field(min_length=1)
    title_en: str = Field(min_length=1)
    test: str
    params: dict[str, Any] = Field(default_factory=dict)

    def label(self) -> dict[str, str]:
        return {"id": self.id, "clause": self.clause, "title_en": self.title_en, "title_zh": self.title_zh}


class Source(_Strict):
    url: str = ""
    note: str = Field(min_length=1)


class GradeText(_Strict):
    grade: Literal["A", "B", "C"]
    clause: str = Field(min_length=1)
    text_zh: str = Field(min_length=1)
    text_en: str = Field(min_length=1)


class IntegrityParams(_Strict):
    window_days: int = Field(365, ge=1)
    no_violation_findings: list[str] = Field(default_factory=lambda: ["none"])


class Listing(_Strict):
    clause: str = Field(min_length=1)
    order_grace_days: int = Field(30, ge=0)
    criteria: list[Criterion] = Field(min_length=1)


class Period(_Strict):
    clause: str = Field(min_length=1)
    years: int = Field(ge=1, le=10)


class EarlyRemoval(_Strict):
    clause: str = Field(min_length=1)
    months_after_correction: int = Field(ge=0)
    text_zh: str = Field(min_length=1)
    text_en: str = Field(min_length=1)


class _Common(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{2,63}$")
    version: str = Field(min_length=1)
    entity_type: Literal["employer"]
    title_en: str = Field(min_length=1)
    title_zh: str = Field(min_length=1)
    legal_basis: str = Field(min_length=1)
    sources: list[Source] = Field(min_length=1)
    file: str = ""


class IntegrityScheme(_Common):
    kind: Literal["integrity_grade"]
    params: IntegrityParams = Field(default_factory=lambda: IntegrityParams(window_days=365))
    grades: list[GradeText] = Field(min_length=3, max_length=3)
    criteria: list[Criterion] = Field(min_length=1)

    def grade_text(self, grade: str) -> GradeText:
        return next(g for g in self.grades if g.grade == grade)


class ListScheme(_Common):
    kind: Literal["discredit_list"]
    list_id: str = Field(pattern=r"^[a-z][a-z0-9_]{2,63}$")
    listing: Listing
    period: Period
    early_removal: EarlyRemoval

    @property
    def criteria(self) -> list[Criterion]:
        return self.listing.criteria


Scheme = IntegrityScheme | ListScheme


# -- loading -------------------------------------------------------------------------------------


def _problems(exc: ValidationError, file: str, criterion: str | None, prefix: str = "") -> list[PackProblem]:
    out = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"])
        out.append(PackProblem(file, err["msg"], criterion, (prefix + "." + loc if prefix else loc) or None))
    return out


def parse_scheme(data: Any, file: str) -> Scheme:
    """A validated scheme from YAML data; raise SchemeError naming file, criterion and field."""
    if not isinstance(data, dict) or data.get("kind") not in TESTS_OF_KIND:
        raise SchemeError(
            [PackProblem(file, f"a scheme is a mapping whose kind is one of {', '.join(TESTS_OF_KIND)}", None, "kind")]
        )
    model: type[IntegrityScheme] | type[ListScheme] = (
        IntegrityScheme if data["kind"] == "integrity_grade" else ListScheme
    )
    try:
        scheme = model.model_validate({**data, "file": file})
    except ValidationError as exc:
        raise SchemeError(_problems(exc, file, None)) from None
    problems: list[PackProblem] = []
    seen: set[str] = set()
    for c in scheme.criteria:
        if c.id in seen:
            problems.append(PackProblem(file, "duplicate criterion id", c.id, "id"))
        seen.add(c.id)
        allowed = TESTS_OF_KIND[scheme.kind]
        if c.test not in allowed:
            problems.append(PackProblem(file, f"unknown test '{c.test}' (known: {', '.join(allowed)})", c.id, "test"))
            continue
        try:
            TESTS[c.test].model_validate(c.params)
        except ValidationError as exc:
            problems.extend(_problems(exc, file, c.id, "params"))
        if scheme.kind == "integrity_grade" and c.grade is None:
            problems.append(PackProblem(file, "an integrity criterion names the grade it gives", c.id, "grade"))
    if isinstance(scheme, IntegrityScheme) and sorted(g.grade for g in scheme.grades) != list(SCHEME_GRADES):
        problems.append(PackProblem(file, "grades must define A, B and C once each", None, "grades"))
    if problems:
        raise SchemeError(problems)
    return scheme


def load_scheme(path: str | Path) -> Scheme:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SchemeError([PackProblem(str(path), f"cannot read the scheme: {exc}")]) from None
    return parse_scheme(data, str(path))


def load_schemes(folder: str | Path = DEFAULT_SCHEME_DIR) -> list[Scheme]:
    """Every scheme in `folder` (file-name order); names and list ids unique."""
    folder = Path(folder)
    paths = sorted(p for p in folder.glob("*.y*ml") if p.is_file()) if folder.is_dir() else []
    if not paths:
        raise SchemeError([PackProblem(str(folder), "no scheme presets (*.yaml) in this folder")])
    schemes: list[Scheme] = []
    problems: list[PackProblem] = []
    for path in paths:
        try:
            scheme = load_scheme(path)
        except SchemeError as exc:
            problems.extend(exc.problems)
            continue
        if any(s.name == scheme.name for s in schemes):
            problems.append(PackProblem(str(path), f"scheme name '{scheme.name}' is used twice", None, "name"))
        schemes.append(scheme)
    if problems:
        raise SchemeError(problems)
    return schemes


def list_ids(schemes: list[Scheme]) -> dict[str, Scheme]:
    """Exchange list id -> scheme: a list's `list_id`, a grade scheme's name."""
    return {(s.list_id if isinstance(s, ListScheme) else s.name): s for s in schemes}


# -- evaluation ----------------------------------------------------------------------------------

INSPECTION_EVIDENCE = ("inspection_id", "date", "finding", "severity", "penalty_amount", "corrected_date")
ARREARS_EVIDENCE = ("month", "persons_affected", "amount_owed", "amount_repaid", "group_incident")
CORRECTION_COLUMNS = ("entity_type", "entity_id", "corrected_date", "source")


@dataclass(frozen=True)
class Found:
    """The entities one criterion found, with the records that show it."""

    criterion: Criterion
    ids: pd.Index
    records: pd.DataFrame  # entity_id + evidence columns
    at: pd.Series | None = None  # per entity: when the criterion was met (lists)


def _records(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    out = frame[["employer_id", *[c for c in columns if c in frame.columns]]].rename(
        columns={"employer_id": "entity_id"}
    )
    for c in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[c]):
            out[c] = out[c].dt.strftime("%Y-%m-%d")
    return out


def _month_end(months: pd.Series) -> pd.Series:
    return pd.to_datetime(months + "-01") + pd.offsets.MonthEnd(0)


def _inspection_test(c: Criterion, insp: pd.DataFrame, violation: pd.Series, as_of: pd.Timestamp) -> pd.DataFrame:
    if c.test == "violations_at_least":
        p = ViolationsAtLeast.model_validate(c.params)
        v = insp[violation]
        n = v.groupby("employer_id")["inspection_id"].transform("size")
        return v[n >= p.count]
    if c.test == "finding_in":
        f = FindingIn.model_validate(c.params)
        return insp[insp["finding"].isin(f.findings)]
    u = UncorrectedAfter.model_validate(c.params)
    deadline = insp["date"] + pd.Timedelta(days=u.days)
    late = insp["corrected_date"].isna() | (insp["corrected_date"] > deadline)
    return insp[violation & (insp["severity"] >= u.min_severity) & late & (deadline <= as_of)]


def _group_incidents(arrears: pd.DataFrame) -> pd.DataFrame:
    return arrears[arrears["group_incident"] == 1]


def integrity_grades(dataset: Dataset, scheme: IntegrityScheme, as_of: pd.Timestamp) -> pd.DataFrame:
    """Every employer's grade by the scheme on its last `window_days` of records (OUTCOME_COLUMNS)."""
    ids = dataset.entity_ids("employer").astype(str)
    lo = as_of - pd.Timedelta(days=scheme.params.window_days)
    insp = dataset.table("inspections")
    insp = insp[(insp["date"] > lo) & (insp["date"] <= as_of)]
    violation = ~insp["finding"].isin(scheme.params.no_violation_findings)
    arrears = dataset.table("wage_arrears")
    ends = _month_end(arrears["month"].astype(str)) if len(arrears) else pd.Series([], dtype="datetime64[ns]")
    arrears = arrears[(ends > lo).to_numpy() & (ends <= as_of).to_numpy()]
    found: list[Found] = []
    for c in scheme.criteria:
        cols: tuple[str, ...]
        if c.test == "wage_group_incident":
            rows, cols = _group_incidents(arrears), ARREARS_EVIDENCE
        else:
            rows, cols = _inspection_test(c, insp, violation, as_of), INSPECTION_EVIDENCE
        if len(rows):
            found.append(Found(c, pd.Index(rows["employer_id"].astype(str).unique()), _records(rows, cols)))
    rank = {g: i for i, g in enumerate(SCHEME_GRADES)}
    worst = pd.Series(0, index=ids, dtype=np.int64)
    for f in found:
        hit = worst.index.isin(f.ids)
        worst[hit] = np.maximum(worst[hit], rank[f.criterion.grade or "A"])
    out = _outcomes(ids, scheme, found)
    out["status"] = np.asarray(SCHEME_GRADES)[worst.to_numpy()]
    a = scheme.grade_text("A")
    out["clause"] = out["clause"].where(out["status"] != "A", a.clause)
    return out


def _outcomes(ids: pd.Index, scheme: Scheme, found: list[Found]) -> pd.DataFrame:
    """One row per entity; criteria and evidence filled for the entities a criterion found."""
    out = pd.DataFrame({c: pd.Series("", index=range(len(ids)), dtype=object) for c in OUTCOME_COLUMNS})
    out["entity_type"], out["entity_id"] = scheme.entity_type, ids.to_numpy(dtype=object)
    out["scheme"], out["scheme_version"], out["source"] = scheme.name, scheme.version, "data"
    out["criteria"], out["evidence"] = "[]", "[]"
    out = out.set_index(pd.Index(ids, name="key"))
    if found:
        labels = pd.concat(
            [pd.DataFrame({"entity_id": f.ids, "criterion": [f.criterion.id] * len(f.ids)}) for f in found]
        )
        by_id = {f.criterion.id: f.criterion for f in found}
        crit = labels.groupby("entity_id")["criterion"].agg(list)
        graded = crit.map(lambda cs: _worst_first([by_id[c] for c in cs]))
        out.loc[graded.index, "criteria"] = [json.dumps([c.label() for c in cs], ensure_ascii=False) for cs in graded]
        out.loc[graded.index, "clause"] = [cs[0].clause for cs in graded]
        records = pd.concat([f.records.assign(criterion=f.criterion.id) for f in found], ignore_index=True)
        keys = [c for c in records.columns if c != "criterion"]
        records = records.groupby(keys, dropna=False, sort=False)["criterion"].agg(list).reset_index()
        records = records.rename(columns={"criterion": "criteria"})
        ev = _evidence(records)
        out.loc[ev.index, "evidence"] = ev.to_numpy()
    return out.reset_index(drop=True)


def _worst_first(criteria: list[Criterion]) -> list[Criterion]:
    rank = {g: i for i, g in enumerate(SCHEME_GRADES)}
    return sorted(criteria, key=lambda c: (-rank.get(c.grade or "C", 2), c.id))


def _evidence(records: pd.DataFrame) -> pd.Series:
    """entity id -> JSON list of its records (missing values left out), in one pass over the rows."""
    by: dict[str, list[dict[str, Any]]] = {}
    rows = records.drop(columns=["entity_id"]).astype(object).to_dict("records")
    for eid, r in zip(records["entity_id"].astype(str), rows):
        by.setdefault(eid, []).append(
            {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items() if not _missing(v)}
        )
    return pd.Series(
        {k: json.dumps(v, ensure_ascii=False, sort_keys=True, default=str) for k, v in by.items()}, dtype=object
    )


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


def no_corrections() -> pd.DataFrame:
    """The correction input with no rows (entity_type, entity_id, corrected_date, source)."""
    return pd.DataFrame(
        {
            "entity_type": pd.Series([], dtype=object),
            "entity_id": pd.Series([], dtype=object),
            "corrected_date": pd.Series([], dtype="datetime64[ns]"),
            "source": pd.Series([], dtype=object),
        }
    )


def list_status(
    dataset: Dataset, scheme: ListScheme, as_of: pd.Timestamp, corrections: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Every employer's place on the list at `as_of` (OUTCOME_COLUMNS): listed when a criterion
    was met `order_grace_days` after the month it was met in; expired `period.years` after; removed
    early once `months_after_correction` have passed since a correction, given a fulfilled
    commitment made since the arrears began and no arrears after the correction.

    A correction is the repayment in full (wage_arrears.amount_repaid) dated by the fulfilled
    commitment (the table holds no repayment date), or one given in `corrections` (entity_type,
    entity_id, corrected_date, source): the pluggable input through which a finding corrected on
    objection (the cases' objection path) enters; a given correction needs no repayment record."""
    ids = dataset.entity_ids("employer").astype(str)
    arrears = dataset.table("wage_arrears").copy()
    arrears["employer_id"] = arrears["employer_id"].astype(str)
    arrears = arrears.sort_values(["employer_id", "month"], kind="mergesort")
    arrears["month_end"] = (
        _month_end(arrears["month"].astype(str)) if len(arrears) else pd.Series(dtype="datetime64[ns]")
    )
    owing = arrears[arrears["amount_owed"] > 0]
    grace = pd.Timedelta(days=scheme.listing.order_grace_days)
    found: list[Found] = []
    for c in scheme.criteria:
        if c.test == "wage_group_incident":
            rows = _group_incidents(owing)
            first = rows.groupby("employer_id")["month_end"].min()
        else:
            p = ArrearsThreshold.model_validate(c.params)
            g = owing.groupby("employer_id")
            met = (
                (g.cumcount() + 1 >= p.min_months)
                & (g["amount_owed"].cumsum() >= p.min_amount)
                & (g["persons_affected"].cummax() >= p.min_persons)
            )
            rows = owing[met]
            first = rows.groupby("employer_id")["month_end"].min()
            rows = owing[owing["employer_id"].isin(first.index)]
        listed = first + grace
        listed = listed[listed <= as_of]
        if len(listed):
            recs = rows[rows["employer_id"].isin(listed.index)]
            found.append(Found(c, pd.Index(listed.index), _records(recs, ARREARS_EVIDENCE), listed))
    out = _outcomes(ids, scheme, found)
    out["status"] = "not_listed"
    if not found:
        return out
    listed_at = pd.concat([f.at for f in found if f.at is not None]).groupby(level=0).min()
    key = pd.Index(out["entity_id"])
    at = listed_at.reindex(key)
    on = at.notna().to_numpy()
    expires = at + pd.DateOffset(years=scheme.period.years)
    removal = _early_removal(dataset, scheme, arrears, listed_at, corrections).reindex(key)
    early = removal.notna() & (removal < expires) & (removal <= as_of)
    expired = ~early & (expires <= as_of)
    status = np.where(early, "removed", np.where(expired, "expired", "listed"))
    out.loc[on, "status"] = status[on]
    out.loc[on, "listed_date"] = at[on].dt.strftime("%Y-%m-%d").to_numpy()
    out.loc[on, "expires_date"] = expires[on].dt.strftime("%Y-%m-%d").to_numpy()
    gone = (early | expired).to_numpy() & on
    out.loc[gone, "removed_date"] = np.where(early, removal.dt.strftime("%Y-%m-%d"), expires.dt.strftime("%Y-%m-%d"))[
        gone
    ]
    out.loc[gone, "removal"] = np.where(early, "early_removal", "expired")[gone]
    return out


def _early_removal(
    dataset: Dataset,
    scheme: ListScheme,
    arrears: pd.DataFrame,
    listed_at: pd.Series,
    corrections: pd.DataFrame | None,
) -> pd.Series:
    """Per listed employer: the date early removal takes effect (NaT when its conditions fail)."""
    com = dataset.table("commitments")
    com = com[(com["entity_type"] == "employer") & (com["fulfilled"] == 1)].copy()
    com["entity_id"] = com["entity_id"].astype(str)
    began = arrears.groupby("employer_id")["month_end"].min() - pd.offsets.MonthBegin(1)
    com = com[com["date"] >= began.reindex(com["entity_id"]).to_numpy()]
    committed = com.groupby("entity_id")["date"].min()
    totals = arrears.groupby("employer_id")[["amount_owed", "amount_repaid"]].sum(min_count=1).fillna(0.0)
    repaid = totals.index[totals["amount_repaid"] >= totals["amount_owed"]]
    corrected = committed[committed.index.isin(repaid)]  # a repayment dated by its commitment
    given = corrections if corrections is not None else no_corrections()
    given = given[given["entity_type"] == scheme.entity_type]
    if len(given):
        by_id = pd.to_datetime(given["corrected_date"]).groupby(given["entity_id"].astype(str).to_numpy()).min()
        corrected = pd.concat([corrected, by_id]).groupby(level=0).min()
    last = arrears.groupby("employer_id")["month_end"].max()
    ids = listed_at.index
    c_at = corrected.reindex(ids)
    # no arrears month after the correction's month
    clean = ~(last.reindex(ids) > c_at + pd.offsets.MonthEnd(0))
    when = pd.concat(
        [c_at + pd.DateOffset(months=scheme.early_removal.months_after_correction), committed.reindex(ids), listed_at],
        axis=1,
    ).max(axis=1, skipna=False)
    return when.where(clean & c_at.notna() & committed.reindex(ids).notna())


def evaluate_schemes(
    dataset: Dataset, schemes: list[Scheme], as_of: pd.Timestamp | None, corrections: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Every scheme's outcome for every entity of its type (OUTCOME_COLUMNS), as of `as_of`."""
    empty = pd.DataFrame({c: pd.Series([], dtype=object) for c in OUTCOME_COLUMNS})
    if as_of is None or not dataset.has("employers"):
        return empty
    parts = [
        integrity_grades(dataset, s, as_of)
        if isinstance(s, IntegrityScheme)
        else list_status(dataset, s, as_of, corrections)
        for s in schemes
        if dataset.has(SCHEME_TABLE[s.kind])  # no records is not a clean record: no grade at all
    ]
    return pd.concat(parts, ignore_index=True).assign(as_of=as_of.strftime("%Y-%m-%d")) if parts else empty


# The table a scheme kind needs: without it the scheme gives no outcome (and says so in the run).
SCHEME_TABLE = {"integrity_grade": "inspections", "discredit_list": "wage_arrears"}
