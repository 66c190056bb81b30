"""The input-row hash a decision record keeps: one row read back from the stored matrix hashes
as the whole matrix hashed it, whatever its dtypes, and reads of a few ids skip the rest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from riskgraph.row_groups import ROW_GROUP_ROWS, WIDE_ROW_GROUP_ROWS, footer, groups_admitting, read_rows
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


def test_a_read_of_some_ids_decodes_only_the_row_groups_holding_them(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    ids = [f"P{i:07d}" for i in range(4 * ROW_GROUP_ROWS)]
    frame = pd.DataFrame(
        {"entity_id": ids, "kind": np.where(np.arange(len(ids)) % 2, "a", "b"), "x": np.arange(len(ids))}
    )
    frame.to_parquet(path, index=False, row_group_size=ROW_GROUP_ROWS)
    meta = footer(path)
    assert meta.num_row_groups == 4
    assert groups_admitting(meta, "entity_id", [ids[ROW_GROUP_ROWS + 3]], {}) == [1]
    assert groups_admitting(meta, "entity_id", [ids[5], ids[-1], "P9999999"], {}) == [0, 3]
    assert groups_admitting(meta, "entity_id", [ids[5]], {"kind": "c"}) == []
    for wanted, where in [
        ([ids[ROW_GROUP_ROWS + 3]], {}),
        ([ids[-1], ids[0], ids[0], "P9999999"], {}),
        ([ids[7], ids[8], ids[2 * ROW_GROUP_ROWS]], {"kind": "a"}),
        (["nobody"], {}),
        ([], {}),
    ]:
        want = frame[frame["entity_id"].isin(wanted)]
        for column, value in where.items():
            want = want[want[column] == value]
        got = read_rows(path, "entity_id", wanted, where).to_pandas()
        pd.testing.assert_frame_equal(got, want.reset_index(drop=True))
    pd.testing.assert_frame_equal(read_rows(path, "entity_id", None).to_pandas(), frame)


def test_a_rewritten_file_is_read_with_its_new_footer(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pd.DataFrame({"entity_id": ["a", "b"], "x": [1, 2]}).to_parquet(path, index=False)
    assert read_rows(path, "entity_id", ["b"]).column("x").to_pylist() == [2]
    pd.DataFrame({"entity_id": ["b", "c", "d"], "x": [5, 6, 7]}).to_parquet(path, index=False)
    assert read_rows(path, "entity_id", ["b", "d"]).column("x").to_pylist() == [5, 7]
    assert footer(path).num_rows == 3
