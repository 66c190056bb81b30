"""Declarative rule packs (rules/packs/*.yaml) evaluated over a dataset into hits with evidence."""

from rules.catalog import list_rules, test_rules
from rules.engine import HIT_COLUMNS, RuleResult, evaluate, grade_caps, hit_features
from rules.pack import (
    DEFAULT_PACK_DIR,
    SEVERITY_LEVELS,
    PackProblem,
    Rule,
    RulePack,
    RulePackError,
    default_pack,
    load_pack,
    load_packs,
)

__all__ = [
    "DEFAULT_PACK_DIR",
    "HIT_COLUMNS",
    "SEVERITY_LEVELS",
    "PackProblem",
    "Rule",
    "RulePack",
    "RulePackError",
    "RuleResult",
    "default_pack",
    "evaluate",
    "grade_caps",
    "hit_features",
    "list_rules",
    "load_pack",
    "load_packs",
    "test_rules",
]
