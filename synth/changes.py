"""Changed copies of a synthetic dataset, to test what survives a re-run (ring ids, alerts).

- `thin_and_leave`: a share of the events removed, and one person member of each planted ring of
  `min_ring_size` or more leaving (their events gone, their phone, bank account and address
  made their own);
- `plant_identity_rings`: new persons in new rings (a shared phone and bank account), added to
  otherwise unchanged data, with their truth rows.

Both read a dataset folder written by `synth.generator` (CSV) and write a new folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

EVENT_TABLES = ("visits", "purchases", "contributions", "benefits")  # rows that are events
PERSON_TABLES = EVENT_TABLES + ("employment",)  # a leaver's rows go from these too
IDENTIFIERS = ("phone", "bank_account", "address")


def _read(folder: Path, name: str) -> pd.DataFrame | None:
    path = folder / f"{name}.csv"
    return pd.read_csv(path, dtype=str, keep_default_na=False) if path.exists() else None


def _copy(src: Path, dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)


def truth_rings(truth: pd.DataFrame) -> pd.DataFrame:
    """The planted rings' members (truth rows with a ring id)."""
    return truth[truth["ring_id"].astype(str).str.strip() != ""]


def thin_and_leave(
    src: Path, dst: Path, *, drop_share: float = 0.05, min_ring_size: int = 4, seed: int = 0
) -> list[str]:
    """Copy `src` to `dst` with `drop_share` of every event table's rows removed and one person
    of each planted ring of `min_ring_size` or more leaving. Returns the leavers' person ids."""
    rng = np.random.default_rng(seed)
    _copy(src, dst)
    truth = pd.read_csv(src / "truth" / "truth.csv", dtype=str, keep_default_na=False)
    rings = truth_rings(truth).drop_duplicates(["ring_id", "entity_type", "entity_id"])
    size = rings.groupby("ring_id").size()
    persons = rings[(rings["entity_type"] == "person") & rings["ring_id"].map(size).ge(min_ring_size)]
    persons = persons.sort_values(["ring_id", "entity_id"])
    pick = persons.groupby("ring_id")["entity_id"].agg(lambda ids: ids.iloc[rng.integers(len(ids))])
    leavers = sorted(set(pick.tolist()))
    for name in PERSON_TABLES:
        df = _read(src, name)
        if df is None:
            continue
        keep = ~df["person_id"].isin(leavers)
        if name in EVENT_TABLES:
            keep &= rng.random(len(df)) >= drop_share
        df[keep].to_csv(dst / f"{name}.csv", index=False)
    links = _read(src, "agency_links")
    if links is not None:
        gone = (links["entity_type"] == "person") & links["entity_id"].isin(leavers)
        links[~gone].to_csv(dst / "agency_links.csv", index=False)
    people = _read(src, "persons")
    assert people is not None
    leaving = people["person_id"].isin(leavers)
    for col in IDENTIFIERS:
        if col in people:
            people.loc[leaving, col] = "own-" + col + "-" + people.loc[leaving, "person_id"]
    people.to_csv(dst / "persons.csv", index=False)
    return leavers


def plant_identity_rings(src: Path, dst: Path, *, rings: int = 3, size: int = 4) -> list[list[str]]:
    """Copy `src` to `dst` with `rings` new identity rings of `size` new persons each (strangers
    sharing one phone and one bank account), added to the truth. Returns their person ids."""
    _copy(src, dst)
    people = _read(src, "persons")
    assert people is not None
    planted: list[list[str]] = []
    rows, truth_rows = [], []
    for r in range(rings):
        ids = [f"PNEW{r:02d}{i:02d}" for i in range(size)]
        planted.append(ids)
        for i, pid in enumerate(ids):
            row = {c: "" for c in people.columns}
            row.update(
                person_id=pid,
                phone=f"1990000{r:02d}99",
                bank_account=f"62229999{r:04d}",
                address=f"{i + 1} new street {r}",
            )
            if "region" in row:
                row["region"] = people["region"].iloc[r % len(people)]
            rows.append(row)
            truth_rows.append(
                {"entity_type": "person", "entity_id": pid, "pattern": "identity_ring", "ring_id": f"RNEW{r}"}
            )
    pd.concat([people, pd.DataFrame(rows)], ignore_index=True).to_csv(dst / "persons.csv", index=False)
    truth = pd.read_csv(src / "truth" / "truth.csv", dtype=str, keep_default_na=False)
    pd.concat([truth, pd.DataFrame(truth_rows)], ignore_index=True).to_csv(dst / "truth" / "truth.csv", index=False)
    return planted
