"""The input-row hash a decision record keeps: one row read back from the stored matrix hashes
as the whole matrix hashed it, whatever its dtypes, and reads of a few ids skip the rest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from riskgraph.row_groups import ROW_GROUP_ROWS, WIDE_ROW_GROUP_ROWS, rows_of
from scoring.inputs import hash_text, load_row_hashes, one_row_hash, row_hashes, save_row_hashes, stored_row_hash


def _matrix(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = pd.Index([f"P{i:07d}" for i in range(n)], name="entity_id", dtype="str")
    values = rng.normal(size=n)
    values[::7] = np.nan
    return pd.DataFrame(
        {
            "region": pd.Categorical(rng.choice(["R1", "R2", None], size=n)),
            "visits": values,
            "negative_zero": np.where(np.arange(n) % 3 == 0, -0.0, 0.0),
            "months": rng.integers(0, 40, size=n).astype(np.int32),
            "count": rng.integers(0, 10**12, size=n).astype(np.int64),
            "small": rng.integers(0, 200, size=n).astype(np.uint8),
            "flag": rng.random(n) < 0.5,
            "opened": pd.to_datetime("2024-01-01") + pd.to_timedelta(rng.integers(0, 900, size=n), unit="D"),
            "note": pd.Series(rng.choice(["a", "b", None], size=n), dtype="str").to_numpy(),
            "share": rng.random(n).astype(np.float32),
            "visits_2": values * 2,  # a second float64 column, hashed in the same call as the first
        },
        index=ids,
    )


def test_one_row_hashes_as_the_whole_matrix_hashed_it() -> None:
    matrix = _matrix(60)
    whole = row_hashes(matrix)
    for i in range(len(matrix)):
        assert one_row_hash(matrix.iloc[i : i + 1]) == int(whole[i]), matrix.index[i]
    no_columns = matrix.iloc[:, :0]
    assert one_row_hash(no_columns.iloc[3:4]) == int(row_hashes(no_columns)[3])


def test_a_stored_row_is_read_alone_and_hashes_as_saved(tmp_path: Path) -> None:
    matrix = _matrix(3 * WIDE_ROW_GROUP_ROWS // 2, seed=1)
    matrix.to_parquet(tmp_path / "person.parquet", row_group_size=WIDE_ROW_GROUP_ROWS)
    save_row_hashes(tmp_path, "person", matrix)
    assert pq.ParquetFile(tmp_path / "person.rowhash.parquet").metadata.num_row_groups > 1
    saved = load_row_hashes(tmp_path, "person")
    assert saved is not None
    for entity_id in [matrix.index[0], matrix.index[ROW_GROUP_ROWS + 5], matrix.index[-1]]:
        assert stored_row_hash(tmp_path, "person", entity_id) == hash_text(saved[entity_id])
    assert stored_row_hash(tmp_path, "person", "P9999999") is None
    some = load_row_hashes(tmp_path, "person", [matrix.index[-1], matrix.index[2]])
    assert some is not None and sorted(some.index) == sorted([matrix.index[-1], matrix.index[2]])
    assert (some == saved[some.index]).all()


def test_a_filtered_read_touches_only_the_row_groups_holding_the_ids(tmp_path: Path) -> None:
    ids = [f"P{i:07d}" for i in range(4 * ROW_GROUP_ROWS)]
    pd.DataFrame({"entity_id": ids, "x": np.arange(len(ids))}).to_parquet(
        tmp_path / "t.parquet", index=False, row_group_size=ROW_GROUP_ROWS
    )
    meta = pq.ParquetFile(tmp_path / "t.parquet").metadata
    groups = [meta.row_group(g).column(0).statistics for g in range(meta.num_row_groups)]
    holding = [g for g, st in enumerate(groups) if st.min <= ids[ROW_GROUP_ROWS + 3] <= st.max]
    assert meta.num_row_groups == 4 and holding == [1]
    rows = pd.read_parquet(
        tmp_path / "t.parquet", filters=rows_of("entity_id", [ids[ROW_GROUP_ROWS + 3]], ("x", ">=", 0))
    )
    assert rows["x"].tolist() == [ROW_GROUP_ROWS + 3]
