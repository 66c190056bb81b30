"""Identity data quality: person records whose ID number fails GB 11643-1999 (graph/resolve/idnumber.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import Field

from graph.dataset import Dataset
from graph.resolve.idnumber import PROBLEMS, check
from rules.cache import Cache
from rules.detectors.base import Detector, Params, _empty, _records


class InvalidIdNumberParams(Params):
    problems: list[str] = Field(default_factory=lambda: list(PROBLEMS), min_length=1)  # which failures fire


INVALID_ID_EVIDENCE = ("problem", "id_length", "id_form")


def invalid_id_number(ds: Dataset, p: InvalidIdNumberParams, cx: Cache) -> pd.DataFrame:
    """Person records whose ID number fails a GB 11643-1999 check (format, province code, birth
    date, check character) or disagrees with the record's own birth_date or gender. The evidence
    names the failed check and the number's length, never the number."""
    unknown = sorted(set(p.problems) - set(PROBLEMS))
    if unknown:
        raise ValueError(f"unknown ID-number problems {unknown}; choose from {list(PROBLEMS)}")
    persons = ds.table("persons")
    if persons.empty or "id_number" not in persons.columns:
        return _empty(INVALID_ID_EVIDENCE)
    checked = check(
        persons["id_number"],
        birth_date=persons["birth_date"] if "birth_date" in persons.columns else None,
        gender=persons["gender"] if "gender" in persons.columns else None,
    )
    rows = np.flatnonzero(checked.invalid & np.isin(checked.problem, p.problems))
    if not len(rows):
        return _empty(INVALID_ID_EVIDENCE)
    f = persons.iloc[rows]
    length = f["id_number"].astype("str").str.len().to_numpy()
    return _records(
        f["person_id"],
        {
            "problem": checked.problem[rows],
            "id_length": length,
            "id_form": np.where(length == 15, "15-digit", np.where(length == 18, "18-digit", "other")),
        },
        ["problem"],
    )


IDENTITY: tuple[Detector, ...] = (
    Detector(
        "invalid_id_number",
        "person",
        InvalidIdNumberParams,
        invalid_id_number,
        INVALID_ID_EVIDENCE,
        ("persons.id_number",),
    ),
)
