"""Grade -> treatment policies: what an approval system does with a grade and a scheme status.

A policy (seeded from rules/policies/*.yaml, then versioned in the results database and changed
through `PUT /v1/policies/{id}`) holds:

- `scheme_caps`: each official scheme's grade or list status mapped onto the A-D credit scale
  (integrity C -> D, on the wage-arrears list -> D). The stricter of the model's grade and the
  cap binds; credit points stay the model's.
- `grades`: the treatments of each final grade: priority handling (优先办理), the credit-commitment
  procedure (告知承诺), the online business scope (网上业务范围), extra checks, and the start-up
  guarantee loan's cap and term per entity type (创业担保贷款额度和期限).
- `scheme_overrides`: stricter treatments while a scheme status holds (listed: no commitment
  procedure, no loan), whatever the grade.

Validated as strictly as a rule pack: every problem is named with its file, section and field.
"""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from riskgraph.errors import InvalidRulePack
from rules.pack import GRADES, PackProblem

DEFAULT_POLICY_DIR = Path(__file__).parent / "policies"
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's, when PyYAML was built with it
SCOPES = ("none", "limited", "standard", "full")  # online business scope, narrowest first
Grade = Literal["A", "B", "C", "D"]
Scope = Literal["none", "limited", "standard", "full"]


class PolicyError(InvalidRulePack):
    """A policy is invalid; nothing was changed."""

    code = "invalid_policy"

    def __init__(self, problems: list[PackProblem]) -> None:
        self.problems = problems
        super().__init__("invalid policy, nothing was changed:\n  " + "\n  ".join(map(str, problems)))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Loan(_Strict):
    cap_yuan: float = Field(ge=0)
    term_months: int = Field(ge=0, le=120)


class Treatment(_Strict):
    priority_handling: bool
    commitment_procedure: bool
    online_scope: Scope
    extra_checks: list[str] = Field(default_factory=list)
    startup_loan: dict[str, Loan] = Field(default_factory=dict)  # entity type -> cap and term


class Override(_Strict):
    """Stricter treatments while `scheme` is in `status`; unset fields keep the grade's."""

    scheme: str = Field(min_length=1)
    status: str = Field(min_length=1)
    priority_handling: bool | None = None
    commitment_procedure: bool | None = None
    online_scope: Scope | None = None
    extra_checks: list[str] = Field(default_factory=list)
    startup_loan: dict[str, Loan] = Field(default_factory=dict)
    reason_en: str = Field(min_length=1)
    reason_zh: str = Field(min_length=1)


class Policy(_Strict):
    """One version of a policy."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{2,63}$")
    version: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    effective_date: dt.date
    title_en: str = Field(min_length=1)
    title_zh: str = Field(min_length=1)
    description: str = ""
    sources: list[str] = Field(default_factory=list)
    scheme_caps: dict[str, dict[str, Grade]] = Field(default_factory=dict)
    grades: dict[Grade, Treatment]
    scheme_overrides: list[Override] = Field(default_factory=list)

    def cap(self, scheme: str, status: str) -> str | None:
        """The A-D cap a scheme status imposes (None: none)."""
        return self.scheme_caps.get(scheme, {}).get(status)

    def treatments(self, grade: str, entity_type: str, statuses: dict[str, str]) -> dict[str, Any]:
        """The treatments of a final grade, made stricter by the overrides of the scheme statuses
        in force; `because` lists the overrides applied (English and Chinese)."""
        base = self.grades[grade]  # type: ignore[index]
        out: dict[str, Any] = {
            "priority_handling": base.priority_handling,
            "commitment_procedure": base.commitment_procedure,
            "online_scope": base.online_scope,
            "extra_checks": list(base.extra_checks),
            "startup_loan": _loan(base.startup_loan.get(entity_type)),
            "because": [],
        }
        for o in self.scheme_overrides:
            if statuses.get(o.scheme) != o.status:
                continue
            if o.priority_handling is not None:
                out["priority_handling"] = out["priority_handling"] and o.priority_handling
            if o.commitment_procedure is not None:
                out["commitment_procedure"] = out["commitment_procedure"] and o.commitment_procedure
            if o.online_scope is not None and SCOPES.index(o.online_scope) < SCOPES.index(out["online_scope"]):
                out["online_scope"] = o.online_scope
            out["extra_checks"] += [c for c in o.extra_checks if c not in out["extra_checks"]]
            loan = o.startup_loan.get(entity_type)
            if loan is not None:
                out["startup_loan"] = {
                    "cap_yuan": min(out["startup_loan"]["cap_yuan"], loan.cap_yuan),
                    "term_months": min(out["startup_loan"]["term_months"], loan.term_months),
                }
            out["because"].append({"scheme": o.scheme, "status": o.status, "text": o.reason_en, "text_zh": o.reason_zh})
        return out


def _loan(loan: Loan | None) -> dict[str, Any]:
    return {"cap_yuan": loan.cap_yuan, "term_months": loan.term_months} if loan else {"cap_yuan": 0.0, "term_months": 0}


def parse_policy(data: Any, file: str) -> Policy:
    """A validated policy; raise PolicyError naming file, section and field of every problem."""
    if not isinstance(data, dict):
        raise PolicyError([PackProblem(file, "a policy is a mapping with id, version, effective_date and grades")])
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = [str(p) for p in err["loc"]]
            section = loc[0] if loc else None
            problems.append(PackProblem(file, err["msg"], section, ".".join(loc) or None))
        raise PolicyError(problems) from None
    missing = [g for g in GRADES if g not in policy.grades]
    if missing:
        raise PolicyError(
            [PackProblem(file, f"treatments missing for grades {', '.join(missing)}", "grades", "grades")]
        )
    return policy


def load_policy(path: str | Path) -> Policy:
    path = Path(path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise PolicyError([PackProblem(str(path), f"cannot read the policy: {exc}")]) from None
    return parse_policy(data, str(path))


def seed_policies(folder: str | Path = DEFAULT_POLICY_DIR) -> list[Policy]:
    """The seed policies shipped in `folder` (every *.yaml), parsed once per version of the files
    (every stored-policy read seeds first, so a credit book or a replay would otherwise re-parse them)."""
    files = tuple((str(p), *_stamp(p)) for p in sorted(Path(folder).glob("*.y*ml")))
    return list(_parsed_seeds(files))


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_mtime_ns, st.st_size


@functools.lru_cache(maxsize=8)
def _parsed_seeds(files: tuple[tuple[str, int, int], ...]) -> tuple[Policy, ...]:
    return tuple(load_policy(path) for path, _, _ in files)


def in_force(versions: list[Policy], on: dt.date) -> Policy | None:
    """The version in force on a day: the latest effective on or before it (the last added wins
    a tie: `versions` in the order they were added)."""
    best: Policy | None = None
    for p in versions:
        if p.effective_date <= on and (best is None or p.effective_date >= best.effective_date):
            best = p
    return best
