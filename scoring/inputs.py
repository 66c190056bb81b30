"""The input row behind every score, by hash: what a decision record references so that a past
answer can be proven to come from the same inputs (api/replay.py).

A run keeps each type's model matrix in `runs/<run>/features/<type>.parquet` (composer/pipeline.py).
Beside it, `<type>.rowhash.parquet` holds every row's 64-bit hash (pandas' `hash_pandas_object`:
vectorised, and a function of the row's values alone, so one row read back from the matrix file
hashes to the same number). A decision's audit row carries its entity's hash; replay recomputes
it from the stored row and refuses to answer if the two differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from riskgraph.row_groups import ROW_GROUP_ROWS, footer, read_rows

ROW_HASH_SUFFIX = ".rowhash.parquet"


def matrix_file(folder: Path, entity_type: str) -> Path:
    """The type's stored model matrix (its rows are the inputs of the run's scores)."""
    return folder / f"{entity_type}.parquet"


def row_hashes(matrix: pd.DataFrame) -> np.ndarray:
    """Each row's hash (uint64) over its entity id and every value, column names included."""
    if matrix.shape[1] == 0:
        only_ids: np.ndarray = pd.util.hash_pandas_object(matrix.index.to_series(), index=False).to_numpy(np.uint64)
        return only_ids
    values: np.ndarray = pd.util.hash_pandas_object(matrix, index=True, categorize=False).to_numpy(np.uint64)
    names = np.uint64(_column_names_hash(matrix.columns))
    hashed: np.ndarray = np.bitwise_xor(values, names)
    return hashed


def hash_text(value: int | np.integer) -> str:
    """A row hash as the 16 hex digits the decision record keeps."""
    return f"{int(value):016x}"


def save_row_hashes(folder: Path, entity_type: str, matrix: pd.DataFrame) -> None:
    """`<type>.rowhash.parquet`: entity_id, input_hash for every row of the type's matrix."""
    table = pa.table(
        {
            "entity_id": pa.array(matrix.index.astype(str).to_numpy(dtype=object), pa.string()),
            "input_hash": pa.array(row_hashes(matrix), pa.uint64()),
        }
    )
    pq.write_table(table, folder / f"{entity_type}{ROW_HASH_SUFFIX}", row_group_size=ROW_GROUP_ROWS)


def load_row_hashes(folder: Path, entity_type: str, ids: Sequence[str] | None = None) -> pd.Series | None:
    """The type's saved row hashes by entity id (None for a run saved before they existed); only
    those of `ids` when given (a replay)."""
    path = folder / f"{entity_type}{ROW_HASH_SUFFIX}"
    if not path.exists():
        return None
    table = read_rows(path, "entity_id", ids)
    index = pd.Index(table.column("entity_id").to_numpy(zero_copy_only=False).astype(object), dtype=object)
    return pd.Series(table.column("input_hash").to_numpy(), index=index, dtype=np.uint64)


def stored_row_hash(folder: Path, entity_type: str, entity_id: str) -> str | None:
    """The hash of one entity's row, recomputed from the stored matrix (None: no such row)."""
    path = matrix_file(folder, entity_type)
    if not path.exists():
        return None
    matrix = read_rows(path, matrix_id_column(path), [entity_id]).to_pandas()
    if len(matrix) == 0:
        return None
    return hash_text(one_row_hash(matrix.iloc[:1]))


_UINT64 = (1 << 64) - 1


def one_row_hash(row: pd.DataFrame) -> int:
    """`row_hashes` of a one-row frame, as fast as one row allows: pandas hashes a frame column by
    column (a Series each, 0.1 ms apiece); here the columns of one NumPy number dtype are hashed
    in one call (the hash of a number depends on it alone), then combined in column order, then
    with the index, as `hash_pandas_object` combines them (CPython's tuple hash; the tests check
    that the two agree on every dtype a matrix holds)."""
    if row.shape[1] == 0:
        return int(row_hashes(row)[0])
    per_column = np.zeros(row.shape[1], dtype=np.uint64)
    plain: dict[np.dtype, list[int]] = {}
    for j, dtype in enumerate(row.dtypes):
        if isinstance(dtype, np.dtype) and dtype.kind in "fiub":
            plain.setdefault(dtype, []).append(j)
        else:
            per_column[j] = pd.util.hash_array(row.iloc[:, j].array, categorize=False)[0]
    for dtype, columns in plain.items():
        per_column[columns] = pd.util.hash_array(row.iloc[:, columns].to_numpy(dtype=dtype)[0], categorize=False)
    index = int(pd.util.hash_pandas_object(row.index[:1], index=False, categorize=False).iloc[0])
    parts = [int(h) for h in per_column] + [index]
    out, mult = 0x345678, 1000003
    for i, h in enumerate(parts):
        out = ((out ^ h) * mult) & _UINT64
        mult = (mult + 82520 + 2 * (len(parts) - i)) & _UINT64
    values = (out + 97531) & _UINT64
    return values ^ _column_names_hash(row.columns)


def _column_names_hash(columns: pd.Index) -> int:
    return int(pd.util.hash_array(np.array(["|".join(map(str, columns))], dtype=object))[0])


def matrix_id_column(path: Path) -> str:
    """The column the matrix file stores its entity ids in (the frame's index)."""
    names = footer(path).schema.to_arrow_schema().pandas_metadata or {}
    index = [c for c in names.get("index_columns", []) if isinstance(c, str)]
    return index[0] if index else "entity_id"
