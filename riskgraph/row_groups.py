"""Parquet files that are read whole (serving loads a run) and one entity at a time (a decision's
replay, api/replay.py). They are written in row groups, with their ids in order, so that a read
filtered on an id skips every group whose min/max statistics do not hold it: at 1M persons one
row comes back in milliseconds instead of decoding the whole file."""

from __future__ import annotations

from collections.abc import Sequence

ROW_GROUP_ROWS = 16_384  # scores, reason columns, row hashes: a few narrow columns
# A model matrix has a hundred columns: smaller groups would grow its footer and slow whole reads.
WIDE_ROW_GROUP_ROWS = 65_536


def rows_of(id_column: str, ids: Sequence[str], *where: tuple[str, str, object]) -> list[tuple[str, str, object]]:
    """The Parquet filters (for `pq.read_table` or `pd.read_parquet`) that read only the rows
    whose `id_column` is one of `ids` and every `where` holds."""
    return [(id_column, "in", list(ids)), *where]
