"""Parquet files that are read whole (serving loads a run) and one entity at a time (a decision's
replay, api/replay.py). They are written in row groups, with their ids in order, so that a read of
a few ids decodes only the groups whose min/max statistics can hold them: at 1M persons one row
comes back in milliseconds instead of decoding the whole file.

`read_rows` picks the groups itself from the file's footer, parsed once per file version and kept
(a run's files never change once written): Arrow's filtered dataset read costs several
milliseconds per call even on a file of one group, most of a small run's replay."""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROW_GROUP_ROWS = 16_384  # scores, reason columns, row hashes: a few narrow columns
# A model matrix has a hundred columns: smaller groups would grow its footer and slow whole reads.
WIDE_ROW_GROUP_ROWS = 65_536

# footers kept: a replay reads 4-6 files of its run (at 1M persons a footer is up to 0.3 MB)
FOOTERS_KEPT = 64


class _Footers:
    """Parsed footers by (path, size, modification time), the least recently used dropped first."""

    def __init__(self, kept: int) -> None:
        self._kept = kept
        self._held: OrderedDict[tuple[str, int, int], pq.FileMetaData] = OrderedDict()
        self._lock = threading.Lock()

    def of(self, path: Path) -> pq.FileMetaData:
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        with self._lock:
            meta = self._held.get(key)
            if meta is not None:
                self._held.move_to_end(key)
                return meta
        meta = pq.read_metadata(path)
        with self._lock:
            self._held[key] = meta
            while len(self._held) > self._kept:
                self._held.popitem(last=False)
        return meta


_footers = _Footers(FOOTERS_KEPT)


def read_rows(
    path: Path, id_column: str, ids: Sequence[str] | None, where: Mapping[str, str] | None = None
) -> pa.Table:
    """`path`'s rows whose `id_column` is one of `ids` and whose `where` columns equal their values
    (every row when `ids` is None), decoding only the row groups whose statistics admit them."""
    if ids is None:
        return pq.read_table(path)
    meta = footer(path)
    wanted = sorted(set(map(str, ids)))
    where = dict(where or {})
    groups = groups_admitting(meta, id_column, wanted, where)
    table = pq.ParquetFile(path, metadata=meta).read_row_groups(groups)
    ids_read = table.column(id_column)
    keep = pc.is_in(ids_read, value_set=pa.array(wanted, ids_read.type))
    for column, value in where.items():
        keep = pc.and_(keep, pc.equal(table.column(column), pa.scalar(value, table.schema.field(column).type)))
    return table.filter(keep)


def footer(path: Path) -> pq.FileMetaData:
    """The file's parsed footer (schema, row groups, statistics), parsed once per file version."""
    return _footers.of(path)


def groups_admitting(meta: pq.FileMetaData, id_column: str, ids: Sequence[str], where: Mapping[str, str]) -> list[int]:
    """The row groups whose min/max statistics admit one of `ids` and every `where` value."""
    names = meta.schema.names
    wanted = sorted(ids)
    return [
        g
        for g in range(meta.num_row_groups)
        if _may_hold(meta.row_group(g), names.index(id_column), wanted)
        and all(_may_hold(meta.row_group(g), names.index(c), [v]) for c, v in where.items())
    ]


def _may_hold(group: Any, column: int, sorted_values: list[str]) -> bool:
    stats = group.column(column).statistics
    if stats is None or not stats.has_min_max:
        return True
    lo, hi = stats.min, stats.max
    if isinstance(lo, bytes):
        lo, hi = lo.decode("utf-8", "replace"), hi.decode("utf-8", "replace")
    at = bisect.bisect_left(sorted_values, lo)
    return at < len(sorted_values) and sorted_values[at] <= hi
