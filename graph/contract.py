"""The input contract: every table of a dataset folder, its columns and their types.

This module is the single source of truth for DESIGN.md's input contract; ingest validation,
the synthetic generator, the graph stores and docs/data-contract.md all follow it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Kind(str, Enum):
    """How a column is parsed."""

    ID = "id"  # non-empty string identifier
    TEXT = "text"  # free or categorical text
    DATE = "date"  # ISO date YYYY-MM-DD -> datetime64
    MONTH = "month"  # YYYY-MM, kept as a string
    AMOUNT = "amount"  # non-negative float
    NUMBER = "number"  # any float
    LABEL = "label"  # 0 or 1
    ENTITY_TYPE = "entity_type"  # one of ENTITY_TYPES


class Level(str, Enum):
    """How sensitive a column is (数据分类分级). Masking, model features, reasons, logging and
    encryption at rest read this level, never a list of names (docs/security.md):

    - public: may be shown to anyone the service answers (a clinic's level, an industry);
    - internal: the administration's own records, shown to its staff (ids, dates, amounts,
      regions); not personal data on its own;
    - personal: identifies or reaches a person or an entity (name, id number, phone, address,
      bank account): masked unless the role may see it, never a model feature nor a reason,
      encrypted at rest;
    - sensitive_personal: gender, age, health (diagnosis, chronic conditions) and the like:
      masked as personal, encrypted at rest, never in reasons, and no model feature unless the
      `model.use_protected_attributes` setting opts it in.
    """

    PUBLIC = "public"
    INTERNAL = "internal"
    PERSONAL = "personal"
    SENSITIVE = "sensitive_personal"

    @property
    def rank(self) -> int:
        return LEVEL_ORDER.index(self)

    @property
    def is_personal(self) -> bool:
        """Personal data (personal or sensitive_personal): masked, encrypted at rest, not logged."""
        return self in (Level.PERSONAL, Level.SENSITIVE)


LEVEL_ORDER: tuple[Level, ...] = (Level.PUBLIC, Level.INTERNAL, Level.PERSONAL, Level.SENSITIVE)
EXTRA_DEFAULT_LEVEL = Level.PERSONAL  # an extra column the data dictionary does not classify


def parse_level(text: str) -> Level | None:
    """The level named by `text` (case-insensitive; `sensitive` is short for sensitive_personal)."""
    t = text.strip().lower().replace("-", "_").replace(" ", "_")
    t = "sensitive_personal" if t == "sensitive" else t
    return next((lv for lv in Level if lv.value == t), None)


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    required: bool = False
    level: Level = Level.INTERNAL
    choices: tuple[str, ...] = ()  # the only values allowed (as written in the file), when set

    @property
    def personal(self) -> bool:
        """Personal data at either level: masked by role, encrypted at rest, never logged."""
        return self.level.is_personal

    @property
    def protected(self) -> bool:
        """A sensitive personal attribute: no feature unless opted in, never a reason."""
        return self.level is Level.SENSITIVE


@dataclass(frozen=True)
class Reference:
    """A column that must name an existing entity of `entity_type`."""

    column: str
    entity_type: str


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()  # columns that must be unique together
    references: tuple[Reference, ...] = ()
    entity_type: str | None = None  # set for entity tables (one row per entity)
    polymorphic_ref: tuple[str, str] | None = None  # (type column, id column), e.g. labels
    extras_allowed: bool = True  # extra columns become attributes / features
    ordered: tuple[tuple[str, str], ...] = ()  # (earlier, later) date columns: later never before earlier

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


PUB, INT, PER, SEN = Level.PUBLIC, Level.INTERNAL, Level.PERSONAL, Level.SENSITIVE


def _c(name: str, kind: Kind, level: Level, *, req: bool = False, choices: tuple[str, ...] = ()) -> Column:
    return Column(name, kind, req, level, choices)


# inspections.severity (1 minor .. 3 serious) and commitments.kind
SEVERITIES: tuple[str, ...] = ("1", "2", "3")
COMMITMENT_KINDS: tuple[str, ...] = ("credit_commitment", "correction_pledge")
# The labour-supervision tables (optional, like every table but persons)
SUPERVISION_TABLES: tuple[str, ...] = ("inspections", "wage_arrears", "commitments")

ENTITY_TYPES: tuple[str, ...] = ("person", "employer", "clinic", "pharmacy", "agency")
IDENTIFIER_TYPES: tuple[str, ...] = ("phone", "address", "bank_account")
ID_COLUMN = {t: f"{t}_id" for t in ENTITY_TYPES}

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "persons",
            (
                _c("person_id", Kind.ID, INT, req=True),
                _c("name", Kind.TEXT, PER),
                _c("id_number", Kind.TEXT, PER),
                _c("gender", Kind.TEXT, SEN),
                _c("birth_date", Kind.DATE, SEN),
                _c("region", Kind.TEXT, INT),
                _c("phone", Kind.TEXT, PER),
                _c("address", Kind.TEXT, PER),
                _c("bank_account", Kind.TEXT, PER),
                _c("death_date", Kind.DATE, INT),
            ),
            key=("person_id",),
            entity_type="person",
        ),
        Table(
            "employers",
            (
                _c("employer_id", Kind.ID, INT, req=True),
                _c("name", Kind.TEXT, PER),
                _c("credit_code", Kind.TEXT, PUB),
                _c("industry", Kind.TEXT, PUB),
                _c("region", Kind.TEXT, PUB),
                _c("registered_date", Kind.DATE, PUB),
                _c("phone", Kind.TEXT, PER),
                _c("address", Kind.TEXT, PER),
                _c("bank_account", Kind.TEXT, PER),
            ),
            key=("employer_id",),
            entity_type="employer",
        ),
        Table(
            "clinics",
            (
                _c("clinic_id", Kind.ID, INT, req=True),
                _c("name", Kind.TEXT, PER),
                _c("level", Kind.TEXT, PUB),
                _c("region", Kind.TEXT, PUB),
                _c("beds", Kind.AMOUNT, PUB),
            ),
            key=("clinic_id",),
            entity_type="clinic",
        ),
        Table(
            "pharmacies",
            (
                _c("pharmacy_id", Kind.ID, INT, req=True),
                _c("name", Kind.TEXT, PER),
                _c("region", Kind.TEXT, PUB),
            ),
            key=("pharmacy_id",),
            entity_type="pharmacy",
        ),
        Table(
            "agencies",
            (
                _c("agency_id", Kind.ID, INT, req=True),
                _c("name", Kind.TEXT, PER),
                _c("license_no", Kind.TEXT, PUB),
                _c("region", Kind.TEXT, PUB),
            ),
            key=("agency_id",),
            entity_type="agency",
        ),
        Table(
            "employment",
            (
                _c("person_id", Kind.ID, INT, req=True),
                _c("employer_id", Kind.ID, INT, req=True),
                _c("start_date", Kind.DATE, INT),
                _c("end_date", Kind.DATE, INT),
                _c("monthly_wage", Kind.AMOUNT, INT),
                _c("agency_id", Kind.ID, INT),
            ),
            references=(
                Reference("person_id", "person"),
                Reference("employer_id", "employer"),
                Reference("agency_id", "agency"),
            ),
        ),
        Table(
            "contributions",
            (
                _c("employer_id", Kind.ID, INT, req=True),
                _c("person_id", Kind.ID, INT, req=True),
                _c("month", Kind.MONTH, INT, req=True),
                _c("base", Kind.AMOUNT, INT),
                _c("due", Kind.AMOUNT, INT),
                _c("paid", Kind.AMOUNT, INT),
            ),
            key=("employer_id", "person_id", "month"),
            references=(Reference("employer_id", "employer"), Reference("person_id", "person")),
        ),
        Table(
            "benefits",
            (
                _c("person_id", Kind.ID, INT, req=True),
                _c("month", Kind.MONTH, INT, req=True),
                _c("benefit_type", Kind.TEXT, INT, req=True),
                _c("amount", Kind.AMOUNT, INT, req=True),
            ),
            references=(Reference("person_id", "person"),),
        ),
        Table(
            "visits",
            (
                _c("visit_id", Kind.ID, INT, req=True),
                _c("person_id", Kind.ID, INT, req=True),
                _c("clinic_id", Kind.ID, INT, req=True),
                _c("date", Kind.DATE, INT),
                _c("kind", Kind.TEXT, INT),
                _c("discharge_date", Kind.DATE, INT),
                _c("diagnosis", Kind.TEXT, SEN),
                _c("amount", Kind.AMOUNT, INT),
                _c("claimed", Kind.AMOUNT, INT),
            ),
            key=("visit_id",),
            references=(Reference("person_id", "person"), Reference("clinic_id", "clinic")),
        ),
        Table(
            "purchases",
            (
                _c("purchase_id", Kind.ID, INT, req=True),
                _c("person_id", Kind.ID, INT, req=True),
                _c("pharmacy_id", Kind.ID, INT, req=True),
                _c("date", Kind.DATE, INT),
                _c("amount", Kind.AMOUNT, INT),
                _c("claimed", Kind.AMOUNT, INT),
                _c("drug_code", Kind.TEXT, INT),
                _c("quantity", Kind.AMOUNT, INT),
                _c("days_supply", Kind.AMOUNT, INT),
                _c("clinic_id", Kind.ID, INT),
            ),
            key=("purchase_id",),
            references=(
                Reference("person_id", "person"),
                Reference("pharmacy_id", "pharmacy"),
                Reference("clinic_id", "clinic"),
            ),
        ),
        Table(
            "agency_links",
            (
                _c("agency_id", Kind.ID, INT, req=True),
                _c("entity_type", Kind.ENTITY_TYPE, INT, req=True),
                _c("entity_id", Kind.ID, INT, req=True),
                _c("relation", Kind.TEXT, INT),
                _c("start_date", Kind.DATE, INT),
            ),
            references=(Reference("agency_id", "agency"),),
            polymorphic_ref=("entity_type", "entity_id"),
        ),
        Table(
            "labels",
            (
                _c("entity_type", Kind.ENTITY_TYPE, INT, req=True),
                _c("entity_id", Kind.ID, INT, req=True),
                _c("label", Kind.LABEL, INT, req=True),
                _c("as_of", Kind.DATE, INT),
            ),
            key=("entity_type", "entity_id"),
            polymorphic_ref=("entity_type", "entity_id"),
            extras_allowed=False,
        ),
        # Labour supervision (credit supervision, docs/credit-policy.md): inspections and their
        # findings, wage arrears by month, and commitments (信用承诺) with their fulfilment.
        Table(
            "inspections",
            (
                _c("inspection_id", Kind.ID, INT, req=True),
                _c("employer_id", Kind.ID, INT, req=True),
                _c("date", Kind.DATE, INT, req=True),
                _c("finding", Kind.TEXT, INT, req=True),
                _c("severity", Kind.NUMBER, INT, req=True, choices=SEVERITIES),
                _c("penalty_amount", Kind.AMOUNT, INT),
                _c("corrected_date", Kind.DATE, INT),
            ),
            key=("inspection_id",),
            references=(Reference("employer_id", "employer"),),
            ordered=(("date", "corrected_date"),),
        ),
        Table(
            "wage_arrears",
            (
                _c("employer_id", Kind.ID, INT, req=True),
                _c("month", Kind.MONTH, INT, req=True),
                _c("persons_affected", Kind.AMOUNT, INT, req=True),
                _c("amount_owed", Kind.AMOUNT, INT, req=True),
                _c("amount_repaid", Kind.AMOUNT, INT),
                _c("group_incident", Kind.LABEL, INT),
            ),
            key=("employer_id", "month"),
            references=(Reference("employer_id", "employer"),),
        ),
        Table(
            "commitments",
            (
                _c("commitment_id", Kind.ID, INT, req=True),
                _c("entity_type", Kind.ENTITY_TYPE, INT, req=True),
                _c("entity_id", Kind.ID, INT, req=True),
                _c("date", Kind.DATE, INT, req=True),
                _c("kind", Kind.TEXT, INT, req=True, choices=COMMITMENT_KINDS),
                _c("fulfilled", Kind.LABEL, INT),
            ),
            key=("commitment_id",),
            polymorphic_ref=("entity_type", "entity_id"),
        ),
        # registries of other departments, matched to persons (graph/resolve/registry.py)
        Table(
            "deaths",
            (
                _c("registry_id", Kind.ID, INT, req=True),
                _c("name", Kind.TEXT, PER),
                _c("id_number", Kind.TEXT, PER),
                _c("birth_date", Kind.DATE, SEN),
                _c("death_date", Kind.DATE, INT, req=True),
                _c("source", Kind.TEXT, INT),
            ),
            key=("registry_id",),
        ),
        Table(
            "custody",
            (
                _c("registry_id", Kind.ID, INT, req=True),
                _c("name", Kind.TEXT, PER),
                _c("id_number", Kind.TEXT, PER),
                _c("birth_date", Kind.DATE, SEN),
                _c("start_date", Kind.DATE, INT, req=True),
                _c("end_date", Kind.DATE, INT),
            ),
            key=("registry_id",),
        ),
    )
}
REGISTRY_TABLES: tuple[str, ...] = ("deaths", "custody")

ENTITY_TABLE = {t.entity_type: t.name for t in TABLES.values() if t.entity_type}
# agency_links may only name persons and employers (DESIGN.md).
AGENCY_LINK_TYPES = ("person", "employer")
# Attributes that become shared-identifier nodes linking entities that share a value.
SHARED_IDENTIFIER_COLUMNS = {"phone": "phone", "address": "address", "bank_account": "bank_account"}
# Contract columns at the personal levels (by name: a name personal in one table is personal in all).
PERSONAL_COLUMNS = frozenset(c.name for t in TABLES.values() for c in t.columns if c.personal)
# Contract columns at the sensitive_personal level (gender, birth_date, diagnosis).
PROTECTED_COLUMNS = frozenset(c.name for t in TABLES.values() for c in t.columns if c.protected)


def contract_level(table: str, column: str) -> Level | None:
    """The contract's level of one table's column (None: not a contract column of that table)."""
    t = TABLES.get(table)
    spec = t.column(column) if t is not None else None
    return spec.level if spec is not None else None


def name_level(column: str) -> Level | None:
    """The highest contract level of a column name in any table (None: no contract column)."""
    found = [c.level for t in TABLES.values() for c in t.columns if c.name == column]
    return max(found, key=lambda lv: lv.rank) if found else None


# Extra columns the data dictionary does not classify but whose usual names say health, ethnicity
# or belief: sensitive_personal, so that a dataset without a dictionary never models on them.
SENSITIVE_EXTRA_NAMES = frozenset(
    {"chronic", "chronic_disease", "disability", "health_status", "pregnant", "pregnancy", "ethnicity", "religion"}
)


def column_level(table: str, column: str, declared: Level | None = None) -> Level:
    """A column's level: the contract's for its columns; for an extra column the level the data
    dictionary declares (`declared`), else sensitive_personal for the usual names of health and
    similar columns (SENSITIVE_EXTRA_NAMES), else EXTRA_DEFAULT_LEVEL (personal)."""
    if declared is None and contract_level(table, column) is None and column.lower() in SENSITIVE_EXTRA_NAMES:
        return Level.SENSITIVE
    return contract_level(table, column) or declared or EXTRA_DEFAULT_LEVEL
