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


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    required: bool = False
    personal: bool = False  # personal data: never a feature, masked by role
    protected: bool = False  # protected attribute (gender, age, health): no feature unless opted in, never a reason


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

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


def _c(name: str, kind: Kind, *, req: bool = False, personal: bool = False, protected: bool = False) -> Column:
    return Column(name, kind, req, personal, protected)


ENTITY_TYPES: tuple[str, ...] = ("person", "employer", "clinic", "pharmacy", "agency")
IDENTIFIER_TYPES: tuple[str, ...] = ("phone", "address", "bank_account")
ID_COLUMN = {t: f"{t}_id" for t in ENTITY_TYPES}

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "persons",
            (
                _c("person_id", Kind.ID, req=True),
                _c("name", Kind.TEXT, personal=True),
                _c("id_number", Kind.TEXT, personal=True),
                _c("gender", Kind.TEXT, protected=True),
                _c("birth_date", Kind.DATE, protected=True),
                _c("region", Kind.TEXT),
                _c("phone", Kind.TEXT, personal=True),
                _c("address", Kind.TEXT, personal=True),
                _c("bank_account", Kind.TEXT, personal=True),
                _c("death_date", Kind.DATE),
            ),
            key=("person_id",),
            entity_type="person",
        ),
        Table(
            "employers",
            (
                _c("employer_id", Kind.ID, req=True),
                _c("name", Kind.TEXT, personal=True),
                _c("credit_code", Kind.TEXT),
                _c("industry", Kind.TEXT),
                _c("region", Kind.TEXT),
                _c("registered_date", Kind.DATE),
                _c("phone", Kind.TEXT, personal=True),
                _c("address", Kind.TEXT, personal=True),
                _c("bank_account", Kind.TEXT, personal=True),
            ),
            key=("employer_id",),
            entity_type="employer",
        ),
        Table(
            "clinics",
            (
                _c("clinic_id", Kind.ID, req=True),
                _c("name", Kind.TEXT, personal=True),
                _c("level", Kind.TEXT),
                _c("region", Kind.TEXT),
                _c("beds", Kind.AMOUNT),
            ),
            key=("clinic_id",),
            entity_type="clinic",
        ),
        Table(
            "pharmacies",
            (
                _c("pharmacy_id", Kind.ID, req=True),
                _c("name", Kind.TEXT, personal=True),
                _c("region", Kind.TEXT),
            ),
            key=("pharmacy_id",),
            entity_type="pharmacy",
        ),
        Table(
            "agencies",
            (
                _c("agency_id", Kind.ID, req=True),
                _c("name", Kind.TEXT, personal=True),
                _c("license_no", Kind.TEXT),
                _c("region", Kind.TEXT),
            ),
            key=("agency_id",),
            entity_type="agency",
        ),
        Table(
            "employment",
            (
                _c("person_id", Kind.ID, req=True),
                _c("employer_id", Kind.ID, req=True),
                _c("start_date", Kind.DATE),
                _c("end_date", Kind.DATE),
                _c("monthly_wage", Kind.AMOUNT),
                _c("agency_id", Kind.ID),
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
                _c("employer_id", Kind.ID, req=True),
                _c("person_id", Kind.ID, req=True),
                _c("month", Kind.MONTH, req=True),
                _c("base", Kind.AMOUNT),
                _c("due", Kind.AMOUNT),
                _c("paid", Kind.AMOUNT),
            ),
            key=("employer_id", "person_id", "month"),
            references=(Reference("employer_id", "employer"), Reference("person_id", "person")),
        ),
        Table(
            "benefits",
            (
                _c("person_id", Kind.ID, req=True),
                _c("month", Kind.MONTH, req=True),
                _c("benefit_type", Kind.TEXT, req=True),
                _c("amount", Kind.AMOUNT, req=True),
            ),
            references=(Reference("person_id", "person"),),
        ),
        Table(
            "visits",
            (
                _c("visit_id", Kind.ID, req=True),
                _c("person_id", Kind.ID, req=True),
                _c("clinic_id", Kind.ID, req=True),
                _c("date", Kind.DATE),
                _c("kind", Kind.TEXT),
                _c("discharge_date", Kind.DATE),
                _c("diagnosis", Kind.TEXT, protected=True),
                _c("amount", Kind.AMOUNT),
                _c("claimed", Kind.AMOUNT),
            ),
            key=("visit_id",),
            references=(Reference("person_id", "person"), Reference("clinic_id", "clinic")),
        ),
        Table(
            "purchases",
            (
                _c("purchase_id", Kind.ID, req=True),
                _c("person_id", Kind.ID, req=True),
                _c("pharmacy_id", Kind.ID, req=True),
                _c("date", Kind.DATE),
                _c("amount", Kind.AMOUNT),
                _c("claimed", Kind.AMOUNT),
                _c("drug_code", Kind.TEXT),
                _c("quantity", Kind.AMOUNT),
                _c("days_supply", Kind.AMOUNT),
                _c("clinic_id", Kind.ID),
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
                _c("agency_id", Kind.ID, req=True),
                _c("entity_type", Kind.ENTITY_TYPE, req=True),
                _c("entity_id", Kind.ID, req=True),
                _c("relation", Kind.TEXT),
                _c("start_date", Kind.DATE),
            ),
            references=(Reference("agency_id", "agency"),),
            polymorphic_ref=("entity_type", "entity_id"),
        ),
        Table(
            "labels",
            (
                _c("entity_type", Kind.ENTITY_TYPE, req=True),
                _c("entity_id", Kind.ID, req=True),
                _c("label", Kind.LABEL, req=True),
                _c("as_of", Kind.DATE),
            ),
            key=("entity_type", "entity_id"),
            polymorphic_ref=("entity_type", "entity_id"),
            extras_allowed=False,
        ),
    )
}

ENTITY_TABLE = {t.entity_type: t.name for t in TABLES.values() if t.entity_type}
# agency_links may only name persons and employers (DESIGN.md).
AGENCY_LINK_TYPES = ("person", "employer")
# Attributes that become shared-identifier nodes linking entities that share a value.
SHARED_IDENTIFIER_COLUMNS = {"phone": "phone", "address": "address", "bank_account": "bank_account"}
PERSONAL_COLUMNS = frozenset(c.name for t in TABLES.values() for c in t.columns if c.personal)
PROTECTED_COLUMNS = frozenset(c.name for t in TABLES.values() for c in t.columns if c.protected)
# Extra columns protected by their usual names (health, ethnicity, ...); a data dictionary can
# mark others (graph/dictionary.py).
PROTECTED_EXTRA_NAMES = frozenset(
    {"chronic", "chronic_disease", "disability", "health_status", "pregnant", "pregnancy", "ethnicity", "religion"}
)
