"""Reading and validating a dataset folder into typed pandas tables.

A `Dataset` is the in-memory form every stage works on: one DataFrame per table present,
with the column types of graph/contract.py (ids and text as `str`, dates as datetime64[ns],
amounts as float64, labels as int8), rows sorted by the table's key so that nothing
depends on file order.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from graph.contract import (
    AGENCY_LINK_TYPES,
    ENTITY_TABLE,
    ENTITY_TYPES,
    ID_COLUMN,
    REGISTRY_TABLES,
    TABLES,
    Kind,
    Table,
)
from riskgraph.errors import InvalidDataset, Problem

MAX_REPORTED_PROBLEMS = 50
PARSE_LANES = min(4, os.cpu_count() or 1)  # a table's columns parsed side by side
_MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"


@dataclass
class Dataset:
    """Typed, validated tables of one dataset, keyed by table name."""

    tables: dict[str, pd.DataFrame]
    content_hash: str = ""
    skipped: list[str] = field(default_factory=list)  # notes on what could not be used

    def has(self, name: str) -> bool:
        return name in self.tables and len(self.tables[name]) > 0

    def table(self, name: str) -> pd.DataFrame:
        """The table, or an empty frame with the contract's columns when absent."""
        if name in self.tables:
            return self.tables[name]
        return empty_table(name)

    def entity_ids(self, entity_type: str) -> pd.Index:
        """Sorted ids of every entity of a type (empty when the table is absent)."""
        df = self.table(ENTITY_TABLE[entity_type])
        return pd.Index(df[ID_COLUMN[entity_type]].to_numpy(dtype=object), name="entity_id")

    def row_counts(self) -> dict[str, int]:
        return {k: int(len(v)) for k, v in sorted(self.tables.items())}


def empty_table(name: str) -> pd.DataFrame:
    table = TABLES[name]
    return pd.DataFrame({c.name: pd.Series([], dtype=_dtype(c.kind)) for c in table.columns})


def _dtype(kind: Kind) -> str:
    return {
        Kind.DATE: "datetime64[ns]",
        Kind.AMOUNT: "float64",
        Kind.NUMBER: "float64",
        Kind.LABEL: "int8",
    }.get(kind, "str")


# ---------------------------------------------------------------------------------------------
# Reading


def find_table_files(folder: Path) -> tuple[dict[str, Path], list[Problem]]:
    """Map table name -> file in `folder`; CSV or Parquet, never both."""
    files: dict[str, Path] = {}
    problems: list[Problem] = []
    for path in sorted(folder.iterdir()):
        if path.is_dir() and path.suffix.lower() in ("", ".parquet") and parquet_parts(path):
            pass  # a partitioned table: a folder of Parquet parts (as Spark writes them)
        elif not path.is_file() or path.suffix.lower() not in (".csv", ".parquet"):
            continue
        name = path.stem
        if name not in TABLES:
            continue
        if name in files:
            problems.append(Problem(path.name, f"both {files[name].name} and {path.name} exist; keep one"))
            continue
        files[name] = path
    return files, problems


def parquet_parts(folder: Path) -> list[Path]:
    """The Parquet parts of a partitioned table's folder, in the order its rows are numbered
    (by path; files and folders starting with `_` or `.`, e.g. _SUCCESS, are not data)."""
    return sorted(
        p
        for p in folder.rglob("*.parquet")
        if p.is_file() and not any(part.startswith(("_", ".")) for part in p.relative_to(folder).parts)
    )


def csv_header(path: Path) -> tuple[list[str], int]:
    """A CSV file's column names (stripped) and the lines its header takes (a quoted name may
    hold line breaks); `EmptyFile` or `Unreadable` (not UTF-8 text) when there is none."""
    if path.stat().st_size == 0:
        raise EmptyFile()
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f)
            header = next(reader, [])
            header_lines = reader.line_num
    except UnicodeDecodeError as exc:
        raise Unreadable(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    names = [c.strip() for c in header] if header else []
    if not names:
        raise EmptyFile()
    return names, header_lines


def _read_raw(path: Path) -> pd.DataFrame:
    """Read a file with every column as nullable text, so parsing happens once, here."""
    if path.suffix.lower() == ".csv":
        names, header_lines = csv_header(path)
        try:
            table = pacsv.read_csv(
                path,
                read_options=pacsv.ReadOptions(
                    column_names=[f"c{i}" for i in range(len(names))], skip_rows=header_lines, encoding="utf-8"
                ),
                parse_options=pacsv.ParseOptions(newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(
                    column_types={f"c{i}": pa.string() for i in range(len(names))},
                    strings_can_be_null=True,
                    null_values=[""],
                ),
            )
        except pa.ArrowInvalid as exc:
            raise Unreadable(_arrow_message(exc)) from exc
        df = table.to_pandas()
        df.columns = names
        return df
    try:
        parts = parquet_parts(path) if path.is_dir() else [path]
        df = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    except Exception as exc:  # pyarrow raises many types for a corrupt file
        raise Unreadable(f"unreadable Parquet file: {exc}") from exc
    return _as_text(df)


def _arrow_message(exc: Exception) -> str:
    text = str(exc)
    if "invalid UTF8" in text or "UTF8" in text:
        return "not UTF-8 text"
    return f"malformed CSV: {text.splitlines()[0]}"


def _as_text(df: pd.DataFrame) -> pd.DataFrame:
    """Every column as text (missing stays missing), so typed input re-parses like a CSV."""
    out = pd.DataFrame(index=pd.RangeIndex(len(df)))
    for col in df.columns:
        s = df[col].reset_index(drop=True)
        if pd.api.types.is_datetime64_any_dtype(s):
            text = s.dt.strftime("%Y-%m-%d")
        elif pd.api.types.is_float_dtype(s):
            text = s.map(repr, na_action="ignore")
        else:
            text = s.astype("str")
        out[col] = text.where(s.notna())
    return out


class EmptyFile(Exception):
    pass


class Unreadable(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Parsing and validation


class Collector:
    """Collects problems; keeps the first MAX_REPORTED_PROBLEMS and counts the rest."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.total = 0

    def add(self, problem: Problem) -> None:
        self.total += 1
        if len(self.problems) < MAX_REPORTED_PROBLEMS:
            self.problems.append(problem)

    def extend(self, other: Collector) -> None:
        """`other`'s problems after these, as if they had been added here."""
        for problem in other.problems:
            self.add(problem)
        self.total += other.total - len(other.problems)

    def add_rows(
        self, file: str, column: str | None, rows: np.ndarray, message: str, values: pd.Series | None = None
    ) -> None:
        """One problem per offending row (0-based positions)."""
        for i, pos in enumerate(rows[:MAX_REPORTED_PROBLEMS]):
            shown = f" (got {values.iloc[i]!r})" if values is not None else ""
            self.add(Problem(file, message + shown, int(pos) + 1, column))
        self.total += max(0, len(rows) - MAX_REPORTED_PROBLEMS)


def check_header(table: Table, cols: list[str], n_rows: int, file: str, out: Collector) -> bool:
    """The header's problems (repeated or missing columns, no rows); False: the table is unusable."""
    dupes = sorted({c for c in cols if cols.count(c) > 1})
    for c in dupes:
        out.add(Problem(file, "column appears more than once", None, c))
    missing = [c for c in table.required if c not in cols]
    for c in missing:
        out.add(Problem(file, "required column is missing", None, c))
    if dupes or missing:
        return False
    if n_rows == 0:
        out.add(
            Problem(
                file,
                "file has a header but no rows; "
                + (
                    "the persons table needs at least one person"
                    if table.name == "persons"
                    else "remove it if the table does not apply"
                ),
            )
        )
        return False
    return True


def _parse_table(table: Table, raw: pd.DataFrame, file: str, out: Collector) -> pd.DataFrame | None:
    raw.columns = [str(c).strip() for c in raw.columns]
    if not check_header(table, list(raw.columns), len(raw), file, out):
        return None

    def parse(name: str) -> tuple[pd.Series | None, Collector]:
        found = Collector()
        s = raw[name].astype("str").str.strip()
        s = s.mask(s.isna() | (s == ""))
        col = table.column(name)
        if col is None:
            if not table.extras_allowed:
                found.add(Problem(file, "unexpected column (this table takes no extra columns)", None, name))
                return None, found
            return _parse_extra(s), found
        if col.required:
            bad = np.flatnonzero(s.isna().to_numpy())
            if len(bad):
                found.add_rows(file, name, bad, "required value is empty")
        parsed = _parse_column(col.kind, s, file, name, found)
        if col.choices:
            _check_choices(col.choices, s, parsed, file, name, found)
        return parsed, found

    # the columns side by side: Arrow's string kernels and casts release the GIL; each column's
    # problems are added in column order, as if parsed one after the other
    with ThreadPoolExecutor(max_workers=PARSE_LANES) as pool:
        parsed = list(pool.map(parse, raw.columns))
    df = pd.DataFrame(index=pd.RangeIndex(len(raw)))
    for name, (series, found) in zip(raw.columns, parsed):
        out.extend(found)
        if series is not None:
            df[name] = series
    for column in table.columns:  # absent optional columns exist, empty, with the right dtype
        if column.name not in df.columns:
            fill = 0 if column.kind == Kind.LABEL else np.nan  # an absent 0/1 flag is 0, as an empty cell
            df[column.name] = pd.Series(fill, index=df.index).astype(_dtype(column.kind))
    return df


def _parse_extra(s: pd.Series) -> pd.Series:
    """An extra column is numeric when every non-empty value is a number, else text."""
    nums = _to_float(s)
    if s.notna().any() and nums[s.notna()].notna().all():
        return nums.astype("float64")
    return s


def _to_float(s: pd.Series) -> pd.Series:
    """Finite numbers from text; unparsable values and 'inf' / 'nan' become NaN. Tries the fast
    vectorised cast first."""
    try:  # Arrow's parser first (C++, no Python float per value); it refuses what it cannot read
        nums = pd.Series(pc.cast(pa.array(s, type=pa.string()), pa.float64()).to_numpy(zero_copy_only=False), s.index)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        try:
            nums = s.astype("float64")
        except (ValueError, TypeError):
            nums = pd.to_numeric(s, errors="coerce").astype("float64")
    return nums.where(np.isfinite(nums.to_numpy()))


def _parse_column(kind: Kind, s: pd.Series, file: str, name: str, out: Collector) -> pd.Series:
    present = s.notna().to_numpy()
    if kind in (Kind.ID, Kind.TEXT):
        return s
    if kind == Kind.DATE:
        parsed = pd.to_datetime(s, format="%Y-%m-%d", errors="coerce")
        bad = np.flatnonzero(present & parsed.isna().to_numpy())
        if len(bad):
            out.add_rows(file, name, bad, "not a date in YYYY-MM-DD form", s.iloc[bad])
        return parsed.astype("datetime64[ns]")
    if kind == Kind.MONTH:
        ok = s.fillna("").str.match(_MONTH_PATTERN).to_numpy()
        bad = np.flatnonzero(present & ~ok)
        if len(bad):
            out.add_rows(file, name, bad, "not a month in YYYY-MM form", s.iloc[bad])
        return s
    if kind in (Kind.AMOUNT, Kind.NUMBER):
        nums = _to_float(s)
        bad = np.flatnonzero(present & nums.isna().to_numpy())
        if len(bad):
            out.add_rows(file, name, bad, "not a number", s.iloc[bad])
        if kind == Kind.AMOUNT:
            neg = np.flatnonzero((nums < 0).to_numpy())
            if len(neg):
                out.add_rows(file, name, neg, "negative amount", s.iloc[neg])
        return nums
    if kind == Kind.LABEL:
        ok = s.isin(["0", "1"]).to_numpy()
        bad = np.flatnonzero(present & ~ok)
        if len(bad):
            out.add_rows(file, name, bad, "label must be 0 or 1", s.iloc[bad])
        return s.where(ok, "0").fillna("0").astype("int8")
    if kind == Kind.ENTITY_TYPE:
        ok = s.isin(list(ENTITY_TYPES)).to_numpy()
        bad = np.flatnonzero(present & ~ok)
        if len(bad):
            out.add_rows(file, name, bad, f"entity type must be one of {', '.join(ENTITY_TYPES)}", s.iloc[bad])
        return s
    raise AssertionError(kind)


def _check_choices(
    choices: tuple[str, ...], raw: pd.Series, parsed: pd.Series, file: str, name: str, out: Collector
) -> None:
    """A column with a closed set of values (a severity 1-3, a commitment kind): numbers compared
    as numbers (a Parquet 2.0 is a 2), text as written."""
    if pd.api.types.is_float_dtype(parsed):
        ok = parsed.isna() | parsed.isin([float(c) for c in choices])
    else:
        ok = raw.isna() | raw.isin(list(choices))
    bad = np.flatnonzero((raw.notna() & ~ok).to_numpy())
    if len(bad):
        out.add_rows(file, name, bad, f"must be one of {', '.join(choices)}", raw.iloc[bad])


def _check_order(table: Table, df: pd.DataFrame, file: str, out: Collector) -> None:
    """A later date never before its earlier one (an inspection corrected before it took place)."""
    for earlier, later in table.ordered:
        rows = np.flatnonzero((df[later] < df[earlier]).to_numpy())
        if len(rows):
            out.add_rows(file, later, rows, f"{later} before {earlier}", df[later].iloc[rows].dt.strftime("%Y-%m-%d"))


def _check_keys(table: Table, df: pd.DataFrame, file: str, out: Collector, order: np.ndarray) -> None:
    """Dates in order, then duplicate keys: every row whose key an earlier row of the file has.
    `order` is `_key_order(table, df)`, so a repeated key sits right after its first row."""
    _check_order(table, df, file, out)
    if not table.key:
        return
    rows = _repeated_keys(df, list(table.key), order)
    if len(rows):
        label = table.key[0] if len(table.key) == 1 else "+".join(table.key)
        out.add_rows(
            file,
            label,
            rows,
            "duplicate id" if len(table.key) == 1 else "duplicate key",
            df.loc[rows, list(table.key)].astype(str).agg("/".join, axis=1),
        )


def _arrow(s: pd.Series) -> pa.Array | pa.ChunkedArray:
    return pa.array(s, from_pandas=True)


def _key_order(table: Table, df: pd.DataFrame) -> np.ndarray:
    """Row positions in the table's key order (the key, else its required columns), missing values
    last. Arrow's sort is stable, so rows with equal keys keep their file order."""
    keys = list(table.key) or list(table.required)
    if not keys or len(df) < 2:
        return np.arange(len(df))
    columns = pa.table([_arrow(df[k]) for k in keys], names=keys)
    return pc.sort_indices(columns, sort_keys=[(k, "ascending", "at_end") for k in keys]).to_numpy()


def _repeated_keys(df: pd.DataFrame, keys: list[str], order: np.ndarray) -> np.ndarray:
    """File positions (ascending) of the rows whose key an earlier row has; two missing values are
    the same key. In key order each repeat directly follows a row with the same key."""
    if len(order) < 2:
        return np.zeros(0, dtype=np.int64)
    same = np.ones(len(order) - 1, dtype=bool)
    at = pa.array(order)
    for key in keys:
        values = _arrow(df[key]).take(at)
        before, after = values[:-1], values[1:]
        equal = pc.fill_null(pc.equal(before, after), False)
        both_missing = pc.and_(pc.is_null(before), pc.is_null(after))
        same &= pc.or_(equal, both_missing).to_numpy(zero_copy_only=False)
    return np.sort(order[1:][same])


def _known_ids(tables: dict[str, pd.DataFrame]) -> dict[str, pa.Array]:
    """Each entity type's ids (as Arrow text, for set membership); empty when its table is absent."""
    return {
        t: pa.array(tables[ENTITY_TABLE[t]][ID_COLUMN[t]].dropna().to_numpy(dtype=object), type=pa.string())
        if ENTITY_TABLE[t] in tables
        else pa.array([], type=pa.string())
        for t in ENTITY_TYPES
    }


def _check_table_references(name: str, df: pd.DataFrame, known: dict[str, pa.Array], file: str, out: Collector) -> None:
    """Every id column of table `name` names a known entity (rows as in the file)."""

    def unknown(values: pd.Series, etype: str) -> np.ndarray:
        """True where a present value is not an id of `etype` (set membership in Arrow)."""
        found = pc.is_in(pa.array(values, type=pa.string(), from_pandas=True), value_set=known[etype])
        return values.notna().to_numpy() & ~found.to_numpy(zero_copy_only=False)

    table = TABLES[name]
    with ThreadPoolExecutor(max_workers=PARSE_LANES) as pool:  # Arrow's set lookups release the GIL
        unknowns = list(pool.map(lambda ref: unknown(df[ref.column], ref.entity_type), table.references))
    for ref, bad_rows in zip(table.references, unknowns):
        bad = np.flatnonzero(bad_rows)
        if len(bad):
            where = ENTITY_TABLE[ref.entity_type]
            out.add_rows(
                file, ref.column, bad, f"unknown {ref.entity_type} id (not in {where})", df[ref.column].iloc[bad]
            )
    if table.polymorphic_ref:
        tcol, icol = table.polymorphic_ref
        if name == "agency_links":
            wrong = np.flatnonzero((df[tcol].notna() & ~df[tcol].isin(AGENCY_LINK_TYPES)).to_numpy())
            if len(wrong):
                out.add_rows(file, tcol, wrong, "agency links name persons or employers only", df[tcol].iloc[wrong])
        for etype in ENTITY_TYPES:
            mask = (df[tcol] == etype) & df[icol].notna()
            bad = np.flatnonzero(mask.to_numpy() & unknown(df[icol], etype))
            if len(bad):
                out.add_rows(file, icol, bad, f"unknown {etype} id (not in {ENTITY_TABLE[etype]})", df[icol].iloc[bad])


def _refers(name: str) -> bool:
    return bool(TABLES[name].references or TABLES[name].polymorphic_ref)


def _check_references(tables: dict[str, pd.DataFrame], files: dict[str, str], out: Collector) -> None:
    known = _known_ids(tables)
    for name, df in tables.items():
        if _refers(name):
            _check_table_references(name, df, known, files[name], out)


def _in_order(df: pd.DataFrame, order: np.ndarray) -> pd.DataFrame:
    return df.take(order).reset_index(drop=True)


def file_hash(files: dict[str, Path]) -> str:
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode())
        for part in parquet_parts(files[name]) if files[name].is_dir() else [files[name]]:
            with open(part, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()[:16]


def start_reading(folder: str | Path) -> tuple[dict[str, Path], Collector, dict[str, str]]:
    """A dataset folder's table files, the problems found so far (misnamed files, no persons
    table) and each table's file name; InvalidDataset when the folder does not exist. The start
    of every reader (this one and the Spark engine's)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidDataset([Problem(str(folder), "dataset folder does not exist")])
    paths, problems = find_table_files(folder)
    out = Collector()
    for p in problems:
        out.add(p)
    if "persons" not in paths:
        out.add(Problem("persons.csv", "the persons table is required (persons.csv or persons.parquet)"))
    return paths, out, {name: path.name for name, path in paths.items()}


RESOLUTION_TABLES = ("persons", *REGISTRY_TABLES)  # what person resolution reads (composer/resolution.py)


def load_dataset(folder: str | Path, on_resolvable: Callable[[Dataset], None] | None = None) -> Dataset:
    """Read and validate every table in `folder`; raise InvalidDataset listing every problem.
    `on_resolvable` is called with the RESOLUTION_TABLES as soon as they are read and no problem
    has been found yet (so resolution can start while the rest is read); the load may still fail."""
    paths, out, names = start_reading(folder)
    tables: dict[str, pd.DataFrame] = {}  # sorted as soon as checked: a table is never held twice
    waiting = set(RESOLUTION_TABLES) & set(paths) if on_resolvable is not None else set()
    found: dict[str, Collector] = {}  # each table's problems, reported in table order whatever the reading order
    references: dict[str, Collector] = {}  # unknown ids, reported only when nothing else is wrong
    known: dict[str, pa.Array] | None = None
    entity_tables = set(ENTITY_TABLE.values())
    # the files' hash in a thread (hashlib releases the GIL), started once the resolution's worker
    # is forked (no fork while it runs) and waited for before returning or raising
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="file-hash") as hasher:
        hashed = None if waiting else hasher.submit(file_hash, paths)
        # the resolution's tables first, so that it starts before the large event tables are read;
        # then the other entity tables, so that every table's ids are checked (on its file's row
        # order) before it is sorted
        for name, path in sorted(
            paths.items(), key=lambda item: (item[0] not in waiting, item[0] not in entity_tables, item[0])
        ):
            mine = found[name] = Collector()
            try:
                raw = _read_raw(path)
            except EmptyFile:
                mine.add(Problem(path.name, "file is empty; remove it if the table does not apply"))
                continue
            except Unreadable as exc:
                mine.add(Problem(path.name, str(exc)))
                continue
            df = _parse_table(TABLES[name], raw, path.name, mine)
            del raw
            if df is not None:
                order = _key_order(TABLES[name], df)
                _check_keys(TABLES[name], df, path.name, mine, order)
                if _refers(name):
                    known = _known_ids(tables) if known is None else known
                    _check_table_references(name, df, known, path.name, references.setdefault(name, Collector()))
                tables[name] = _in_order(df, order)
                del df
            clean = out.total == 0 and all(c.total == 0 for c in found.values())
            if waiting and waiting <= set(tables) and clean and on_resolvable is not None:
                on_resolvable(Dataset({n: tables[n] for n in sorted(waiting)}))
                waiting = set()
            if hashed is None and not waiting:
                hashed = hasher.submit(file_hash, paths)
        for name in sorted(found):
            out.extend(found[name])
        if out.total == 0:
            for name in sorted(references):
                out.extend(references[name])
        if out.total:
            raise InvalidDataset(out.problems, out.total)
        content_hash = hashed.result() if hashed is not None else file_hash(paths)
    return Dataset(tables, content_hash=content_hash)


def dataset_from_text(raws: dict[str, pd.DataFrame], files: dict[str, str], content_hash: str) -> Dataset:
    """Tables read as text and validated elsewhere (the Spark engine's reader,
    composer/engines/spark_read.py), typed as `load_dataset` types them. Any problem found here
    after all is raised with the same messages (a safety net, not the validation)."""
    out = Collector()
    tables: dict[str, pd.DataFrame] = {}
    for name, raw in sorted(raws.items()):
        df = _parse_table(TABLES[name], raw, files[name], out)
        if df is not None:
            order = _key_order(TABLES[name], df)
            _check_keys(TABLES[name], df, files[name], out, order)
            tables[name] = _in_order(df, order)
    if out.total:
        raise InvalidDataset(out.problems, out.total)
    return Dataset(tables, content_hash=content_hash)


def dataset_from_frames(frames: dict[str, pd.DataFrame]) -> Dataset:
    """Validate in-memory tables (as text or typed) through the same checks as files."""
    out = Collector()
    tables: dict[str, pd.DataFrame] = {}
    orders: dict[str, np.ndarray] = {}
    for name, frame in sorted(frames.items()):
        if name not in TABLES:
            out.add(Problem(name, "not a table of the input contract"))
            continue
        raw = _as_text(frame)
        df = _parse_table(TABLES[name], raw, name, out)
        if df is not None:
            orders[name] = _key_order(TABLES[name], df)
            _check_keys(TABLES[name], df, name, out, orders[name])
            tables[name] = df
    if "persons" not in tables and out.total == 0:
        out.add(Problem("persons", "the persons table is required"))
    if out.total == 0:
        _check_references(tables, {n: n for n in tables}, out)
    if out.total:
        raise InvalidDataset(out.problems, out.total)
    typed = {name: _in_order(df, orders[name]) for name, df in tables.items()}
    h = hashlib.sha256()
    for name in sorted(typed):
        h.update(name.encode())
        h.update(pd.util.hash_pandas_object(typed[name].astype(str), index=False).to_numpy().tobytes())
    return Dataset(typed, content_hash=h.hexdigest()[:16])
