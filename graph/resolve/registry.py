"""Matching the death and custody registries to person records with the person model.

Each registry row (name, id_number, birth_date; gender read from the number) is put in the
model's form and scored against every person record with the same fitted parameters
(`PersonModel.predict_between`); the best record at or above `threshold` is its match. A row
without a name is matched on its other fields and flagged `low_confidence`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from graph.contract import REGISTRY_TABLES
from graph.dataset import Dataset
from graph.resolve.model import PersonModel, prepare

MATCH_COLUMNS = ["table", "registry_id", "person_id", "match_probability", "low_confidence"]


def empty_matches() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "table": pd.Series([], dtype="str"),
            "registry_id": pd.Series([], dtype="str"),
            "person_id": pd.Series([], dtype="str"),
            "match_probability": pd.Series([], dtype="float64"),
            "low_confidence": pd.Series([], dtype="bool"),
        }
    )


def registry_records(dataset: Dataset) -> pd.DataFrame:
    """Every registry row in the model's form; unique_id is `table:registry_id`."""
    parts = []
    for table in REGISTRY_TABLES:
        if not dataset.has(table):
            continue
        df = dataset.table(table)
        recs = prepare(
            table + ":" + df["registry_id"].astype("str"),
            name=df["name"] if "name" in df.columns else None,
            id_number=df["id_number"] if "id_number" in df.columns else None,
            birth_date=df["birth_date"] if "birth_date" in df.columns else None,
        )
        parts.append(recs)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def match_registries(
    dataset: Dataset,
    persons: pd.DataFrame,
    model_json: dict[str, Any],
    *,
    temp_dir: Path,
    threshold: float,
    threads: int = 2,
    memory_limit: str = "4GB",
) -> pd.DataFrame:
    """MATCH_COLUMNS: the best person record of each registry row at or above `threshold`.
    `persons`: the person records in the model's form; `model_json`: the fitted person model."""
    reg = registry_records(dataset)
    if reg.empty or persons.empty or not model_json:
        return empty_matches()
    # linking, not deduplication: a registry row is one of the persons at most, so the prior that
    # a registry row and a random person record match is one over the persons
    linked = dict(model_json, probability_two_random_records_match=min(0.5, 1.0 / max(len(persons), 1)))
    with PersonModel(temp_dir=temp_dir, threads=threads, memory_limit=memory_limit, frozen=linked) as model:
        model.fit(persons)
        pairs = model.predict_between(persons, reg, threshold)
    if pairs.empty:
        return empty_matches()
    # a pair's ends are sorted as text; the registry end is the one with a table prefix
    is_reg_left = pairs["left"].str.contains(":", regex=False).to_numpy()
    reg_id = np.where(is_reg_left, pairs["left"], pairs["right"])
    person = np.where(is_reg_left, pairs["right"], pairs["left"])
    got = pd.DataFrame({"uid": reg_id, "person_id": person, "match_probability": pairs["match_probability"]})
    got = got.sort_values(["uid", "match_probability", "person_id"], ascending=[True, False, True])
    got = got.drop_duplicates("uid")
    table_and_id = got["uid"].str.split(":", n=1, expand=True)
    nameless = set(reg.loc[reg["name_py"].isna(), "unique_id"])
    return pd.DataFrame(
        {
            "table": table_and_id[0].to_numpy(),
            "registry_id": table_and_id[1].to_numpy(),
            "person_id": got["person_id"].to_numpy(),
            "match_probability": got["match_probability"].to_numpy(dtype=np.float64),
            "low_confidence": got["uid"].isin(nameless).to_numpy(),
        }
    ).reset_index(drop=True)
