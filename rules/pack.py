"""Rule packs: versioned YAML files of declarative rules, validated strictly before anything runs.

A pack names built-in detectors (rules/detectors.py) and gives their parameters; it never holds
code. Every problem is reported with the file, the rule id and the field at fault.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from graph.contract import ENTITY_TYPES
from riskgraph.errors import InvalidRulePack
from rules.detectors import DETECTORS

DEFAULT_PACK_DIR = Path(__file__).parent / "packs"

# Severity names used in packs and the numbers written to rule_hits.csv.
SEVERITY_LEVELS: dict[str, int] = {"low": 1, "medium": 2, "high": 3, "critical": 4}
GRADES = ("A", "B", "C", "D")
RULE_ID_PATTERN = r"^[a-z][a-z0-9_]{2,63}$"

EntityType = Literal["person", "employer", "clinic", "pharmacy", "agency"]
assert set(EntityType.__args__) == set(ENTITY_TYPES)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class PackProblem:
    """One thing wrong with a pack: where (file, rule, field) and what."""

    file: str
    message: str
    rule_id: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.rule_id is not None:
            where += f" rule '{self.rule_id}'"
        if self.field is not None:
            where += f" field '{self.field}'"
        return f"{where}: {self.message}"


class RulePackError(InvalidRulePack):
    """A rule pack (or a settings override) is invalid; no rule was run."""

    def __init__(self, problems: list[PackProblem]) -> None:
        self.problems = problems
        super().__init__("invalid rule pack, nothing was run:\n  " + "\n  ".join(map(str, problems)))


class Rule(BaseModel):
    """One declarative rule: which detector runs, with which thresholds, on which entities."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=RULE_ID_PATTERN)
    title_zh: str = Field(min_length=1)
    title_en: str = Field(min_length=1)
    entity_type: EntityType
    severity: Literal["low", "medium", "high", "critical"]
    detector: str
    params: dict[str, Any] = Field(default_factory=dict)
    evidence: list[str] | None = None  # record columns to keep; None = the detector's default
    grade_cap: Literal["A", "B", "C", "D"] | None = None
    # serious discredit (严重失信): caps the grade at D and puts the entity first in triage
    serious: bool = False
    reason_code: str | None = Field(None, pattern=r"^RG-R-[0-9]{3}$")  # stable code in reasons
    enabled: bool = True
    description: str = ""
    source: str = ""  # where the typology comes from (e.g. DOMAIN.md section)

    @model_validator(mode="after")
    def _serious_caps_at_d(self) -> Rule:
        if self.serious and self.grade_cap not in (None, "D"):
            raise ValueError(f"a serious rule caps the grade at D, not {self.grade_cap}")
        if self.serious and self.grade_cap is None:
            object.__setattr__(self, "grade_cap", "D")
        return self

    @property
    def severity_level(self) -> int:
        return SEVERITY_LEVELS[self.severity]

    @property
    def code(self) -> str:
        """The rule's reason code: its own, else one derived from its id."""
        return self.reason_code or f"RG-R-{self.id}"


class _PackHeader(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    version: str = Field(min_length=1)
    description: str = ""
    rules: list[Any]


class RulePack(BaseModel):
    """A validated pack. Build it with `load_pack`, not directly."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: str
    description: str = ""
    rules: tuple[Rule, ...]
    file: str = ""

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)


def _field(loc: tuple[int | str, ...]) -> str | None:
    return ".".join(str(p) for p in loc) if loc else None


def _errors(exc: ValidationError, file: str, rule_id: str | None, prefix: str = "") -> list[PackProblem]:
    out = []
    for err in exc.errors(include_url=False):
        name = _field(tuple(err["loc"]))
        if prefix:
            name = prefix + ("." + name if name else "")
        out.append(PackProblem(file, err["msg"], rule_id, name))
    return out


def validate_params(rule: Rule, params: Mapping[str, Any], file: str) -> BaseModel:
    """The rule's parameters checked against its detector's schema; raise naming the field."""
    det = DETECTORS[rule.detector]
    try:
        return det.params.model_validate(dict(params))
    except ValidationError as exc:
        raise RulePackError(_errors(exc, file, rule.id, "params")) from None


def _check_rule(rule: Rule, file: str) -> list[PackProblem]:
    det = DETECTORS.get(rule.detector)
    if det is None:
        known = ", ".join(sorted(DETECTORS))
        return [PackProblem(file, f"unknown detector '{rule.detector}' (known: {known})", rule.id, "detector")]
    problems = []
    if rule.entity_type != det.entity_type:
        problems.append(
            PackProblem(
                file,
                f"detector '{det.name}' finds {det.entity_type} entities, not {rule.entity_type}",
                rule.id,
                "entity_type",
            )
        )
    try:
        validate_params(rule, rule.params, file)
    except RulePackError as exc:
        problems.extend(exc.problems)
    if rule.evidence is not None:
        unknown = [c for c in rule.evidence if c not in det.evidence]
        if unknown or not rule.evidence:
            problems.append(
                PackProblem(
                    file,
                    f"unknown evidence columns {unknown} (available: {', '.join(det.evidence)})"
                    if unknown
                    else "evidence must list at least one column",
                    rule.id,
                    "evidence",
                )
            )
    return problems


def parse_pack(data: Any, file: str) -> RulePack:
    """Validate a pack already read from YAML; raise RulePackError listing every problem."""
    if not isinstance(data, dict):
        raise RulePackError([PackProblem(file, "a pack is a mapping with name, version and rules")])
    try:
        header = _PackHeader.model_validate(data)
    except ValidationError as exc:
        raise RulePackError(_errors(exc, file, None)) from None
    problems: list[PackProblem] = []
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, raw in enumerate(header.rules):
        rid = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else f"#{i + 1}"
        if not isinstance(raw, dict):
            problems.append(PackProblem(file, "a rule is a mapping of fields", rid))
            continue
        try:
            rule = Rule.model_validate(raw)
        except ValidationError as exc:
            problems.extend(_errors(exc, file, rid))
            continue
        if rule.id in seen:
            problems.append(PackProblem(file, "duplicate rule id in this pack", rule.id, "id"))
        seen.add(rule.id)
        problems.extend(_check_rule(rule, file))
        rules.append(rule)
    if not header.rules:
        problems.append(PackProblem(file, "the pack has no rules", None, "rules"))
    if problems:
        raise RulePackError(problems)
    return RulePack(
        name=header.name, version=header.version, description=header.description, rules=tuple(rules), file=file
    )


def load_pack(path: str | Path) -> RulePack:
    """Read and validate one YAML pack; raise RulePackError naming file, rule and field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RulePackError([PackProblem(str(path), f"cannot read the pack: {exc}")]) from None
    try:
        data = yaml.safe_load(text)  # safe_load: no Python objects, no code from the file
    except yaml.YAMLError as exc:
        raise RulePackError([PackProblem(str(path), f"not valid YAML: {exc}")]) from None
    return parse_pack(data, str(path))


def load_packs(folder: str | Path = DEFAULT_PACK_DIR) -> list[RulePack]:
    """Every `*.yaml`/`*.yml` pack in a folder, in file-name order; rule ids unique across packs."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RulePackError([PackProblem(str(folder), "rule pack folder does not exist")])
    paths = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if not paths:
        raise RulePackError([PackProblem(str(folder), "no rule packs (*.yaml) in this folder")])
    packs: list[RulePack] = []
    problems: list[PackProblem] = []
    owner: dict[str, str] = {}
    names: dict[str, str] = {}
    for path in paths:
        try:
            pack = load_pack(path)
        except RulePackError as exc:
            problems.extend(exc.problems)
            continue
        if pack.name in names:
            problems.append(
                PackProblem(str(path), f"pack name '{pack.name}' is also used by {names[pack.name]}", None, "name")
            )
        names[pack.name] = str(path)
        for rule in pack.rules:
            if rule.id in owner:
                problems.append(PackProblem(str(path), f"rule id also defined in {owner[rule.id]}", rule.id, "id"))
            owner[rule.id] = str(path)
        packs.append(pack)
    if problems:
        raise RulePackError(problems)
    return packs


def default_pack() -> RulePack:
    """The pack shipped with RiskGraph (rules/packs/default.yaml)."""
    return load_pack(DEFAULT_PACK_DIR / "default.yaml")
