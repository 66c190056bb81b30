"""Per-entity feature tables, built with vectorised group-bys and sparse products.

`build_features` returns one DataFrame per entity type, indexed by entity id in sorted order
(the projection's order), all columns numeric (categoricals as pandas `category`). Personal
data columns (graph/contract.py `personal`) never become features.

Group-bys never touch the id strings: they run on the projection's `ColumnCodes` (graph/codes.py:
ids as integer codes, dates as day numbers, months as month numbers, each computed once). The
parts:

- features/entity_aggregates.py: each entity type's aggregates over the event tables;
- features/same_day.py: same-day clinic visits and pharmacy purchases (pairs, partners);
- features/attributes.py: the entity tables' own columns, the reference date, input names;
- features/groupby.py: the integer group-by kernels they share.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import pandas as pd

from features.attributes import (
    INPUT_PREFIX,
    LATER_FEATURE_NAMES,
    LATER_FEATURE_PREFIXES,
    MAX_CATEGORIES,
    attributes,
    input_feature_names,
    reference_date,
)
from features.conduct import conduct_features
from features.entity_aggregates import (
    Given,
    agency_features,
    clinic_features,
    employer_features,
    person_features,
    pharmacy_features,
)
from features.same_day import SameDayPairs, same_day_pairs, same_day_partners
from graph.contract import ENTITY_TYPES
from graph.dataset import Dataset
from graph.projection import Projection

__all__ = [
    "INPUT_PREFIX",
    "LATER_FEATURE_NAMES",
    "LATER_FEATURE_PREFIXES",
    "MAX_CATEGORIES",
    "SameDayPairs",
    "agency_features",
    "attributes",
    "build_features",
    "clinic_features",
    "employer_features",
    "input_feature_names",
    "person_features",
    "pharmacy_features",
    "reference_date",
    "same_day_pairs",
    "same_day_partners",
]


def build_features(
    dataset: Dataset,
    proj: Projection,
    exclude: Collection[str] = frozenset(),
    given: Mapping[str, Given] | None = None,
) -> dict[str, pd.DataFrame]:
    """Feature table per entity type (rows in the projection's sorted id order); the entity
    tables' columns named in `exclude` (protected attributes) are left out. `given`: per entity
    type, groups of derived features computed elsewhere (features/entity_aggregates.py `GROUPS`;
    the Spark engine's), taken as they are."""
    given = given or {}
    ref = reference_date(dataset)
    # the projection's id codes; dates, months and flags memoised for this build only
    cols = proj.column_codes.sharing_ids()
    pairs = same_day_pairs(dataset, proj, cols)
    out = {
        "person": person_features(dataset, proj, ref, pairs, cols, given.get("person")),
        "employer": employer_features(dataset, proj, ref, cols, given.get("employer")),
        "clinic": clinic_features(dataset, proj, ref, pairs, cols, given.get("clinic")),
        "pharmacy": pharmacy_features(dataset, proj, ref, pairs, cols, given.get("pharmacy")),
        "agency": agency_features(dataset, proj, ref, cols, given.get("agency")),
    }
    for t in ENTITY_TYPES:
        out[t].index.name = "entity_id"
        conduct = conduct_features(dataset, t, out[t].index)
        if len(conduct.columns):
            out[t] = out[t].join(conduct)
        if exclude:
            out[t] = out[t].drop(columns=[c for c in out[t].columns if _source_column(c) in exclude])
    return out


def _source_column(feature: str) -> str:
    """The input column an attribute feature comes from (birth_date_years_ago -> birth_date)."""
    while feature.startswith(INPUT_PREFIX):
        feature = feature[len(INPUT_PREFIX) :]
    return feature.removesuffix("_years_ago")
