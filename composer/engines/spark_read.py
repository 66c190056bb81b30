"""The Spark engine's reader: the input contract's tables read by Spark and validated as
DataFrame expressions, with the pandas reader's messages (graph/dataset.py).

- CSV files, Parquet files and partitioned tables (a folder `claims/` or `claims.parquet/` of
  Parquet parts) are read natively by Spark, every column as text, as the pandas reader does.
- Rows are numbered as read: a CSV file is read as one split (quoted values may hold line
  breaks) and numbered by its scan order, then (a large one) spread over the cores; Parquet rows
  by their position in their file (`_metadata.row_index`), the parts of a folder one after the
  other in path order.
- Every check of graph/dataset.py (required values, dates, months, numbers, amounts, labels,
  entity types, closed choices, date order, duplicate keys) is a column expression; one scan per
  table explodes each row's failed checks, and only the first `MAX_REPORTED_PROBLEMS` rows of
  each check (and every check's count) reach the driver, where they become the same `Problem`s in
  the same order. Unknown ids: every id column's distinct values against the ids in one job, and
  only the tables with an unknown value are scanned for its rows.
- A valid dataset's text columns are then collected in row order and typed on the driver
  (`graph.dataset.dataset_from_text`), each table's text dropped (and its Spark copy unpersisted)
  once it is typed: every later stage still needs the driver's tables. The persons and
  registries are read and checked first and, if no problem was found so far, collected at once
  for person resolution, which then runs beside the rest of the reading.
- Tables are read, checked and collected as many at a time as the session has cores (at most
  `MAX_LANES`), the largest first: one CSV file's scans before its spreading use one core.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from composer.engines.spark_session import spark_context
from graph.contract import AGENCY_LINK_TYPES, ENTITY_TABLE, ENTITY_TYPES, ID_COLUMN, TABLES, Kind, Table
from graph.dataset import (
    _MONTH_PATTERN,
    MAX_REPORTED_PROBLEMS,
    RESOLUTION_TABLES,
    Collector,
    Dataset,
    EmptyFile,
    Unreadable,
    check_header,
    csv_header,
    dataset_from_text,
    file_hash,
    parquet_parts,
    start_reading,
)
from riskgraph.errors import InvalidDataset, Problem

# str.strip() (and pandas' on Arrow text): Unicode white space at both ends, and the four
# information separators U+001C-U+001F, which Python counts as space and Java's \s does not
_STRIP = r"(?U)^[\s\x1c-\x1f]+|[\s\x1c-\x1f]+$"
# the same characters one by one (every character whose str.isspace() is True): a value whose first
# and last characters are not among them has nothing to strip, and most values are such
SPACES = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + "\u2028\u2029\u202f\u205f\u3000"
)
_FINITE_NUMBER = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"  # what float() takes, finite


@dataclass
class Check:
    """One check of one column: the rows where `failed` holds are reported with `message`."""

    column: str
    message: str
    failed: Any  # a boolean Column
    shown: Any = None  # the value shown as "(got '...')", a string Column; None: no value


@dataclass
class _Read:
    frame: Any  # `_row` (1-based data row) and every column as text, named as in the file
    names: list[str]
    cached: Any  # the persisted frame it is read from (unpersisted after the collect)


def read_dataset(session: Any, folder: str | Path, on_resolvable: Callable[[Dataset], None] | None = None) -> Dataset:
    """`graph.dataset.load_dataset` on Spark: the same problems, else the same typed tables.
    `on_resolvable` as there: called with the RESOLUTION_TABLES, collected and typed, as soon as
    they are checked and no problem has been found yet (the load may still fail)."""
    paths, out, names = start_reading(folder)
    found = {name: Collector() for name in paths}  # each table's problems, reported in table order
    checked: dict[str, _Checked] = {}
    collected: dict[str, pd.DataFrame] = {}  # tables collected and typed (the resolution's early)
    cached: dict[str, Any] = {}  # each table's text, parsed once and kept for the checks and the collect
    waiting = sorted(set(RESOLUTION_TABLES) & set(paths)) if on_resolvable is not None else []
    # A CSV file is one partition (its rows are numbered as read), so one table's scans use one
    # core: tables are read, checked and collected `lanes` at a time, the largest first.
    largest_first = sorted(set(paths) - set(waiting), key=lambda n: (-_input_bytes(paths[n]), n))

    def check(name: str) -> None:
        got = _checked(session, paths[name], found[name], cached, name)
        if got is not None:
            checked[name] = got

    def collect(name: str) -> None:
        typed = dataset_from_text({name: _collect(checked[name].text, paths[name])}, names, "").tables
        cached.pop(name).unpersist()  # its text is on the driver now: free Spark's copy
        collected.update(typed)

    try:
        with ThreadPoolExecutor(_lanes(session), thread_name_prefix="spark-read") as lanes:
            # the resolution's tables first, so that it starts before the large event tables are read
            _each(lanes, check, waiting)
            clean = out.total == 0 and all(found[n].total == 0 for n in waiting)
            if waiting and set(waiting) <= set(checked) and clean and on_resolvable is not None:
                early = dataset_from_text({n: _collect(checked[n].text, paths[n]) for n in waiting}, names, "")
                collected |= early.tables
                on_resolvable(early)
            _each(lanes, check, largest_first)
            for name in sorted(found):
                out.extend(found[name])
            if out.total == 0:
                _check_references(lanes, {n: c.typed for n, c in checked.items()}, names, out)
            if out.total:
                raise InvalidDataset(out.problems, out.total)
            by_size = sorted(set(checked) - set(collected), key=lambda n: (-_input_bytes(paths[n]), n))
            _each(lanes, collect, by_size)
    finally:
        for frame in cached.values():
            frame.unpersist()
    return Dataset({name: collected[name] for name in sorted(collected)}, content_hash=file_hash(paths))


@dataclass
class _Checked:
    typed: Any  # `_row`, the stripped text and the parsed values (`__num_<c>`, `__date_<c>`): the checks'
    text: Any  # `_row` and the text as read: what the driver types (and strips)


def _checked(session: Any, path: Path, mine: Collector, cached: dict[str, Any], name: str) -> _Checked | None:
    """One table read and checked, its problems in `mine`; None when it cannot be typed."""
    from pyspark.sql import functions as F

    got = _read(session, path, mine)
    if got is None:
        return None
    table = TABLES[name]
    cols = [c.strip() for c in got.names]
    frame = got.frame.toDF("_row", *cols)
    cached[name] = got.cached
    if not check_header(table, cols, len(frame.take(1)), path.name, mine):  # only "no rows" needs the size
        return None
    steps: list[Check | Problem] = []
    typed = frame.select("_row", *[_stripped(F.col(f"`{c}`")).alias(c) for c in cols])
    for c in cols:
        column = table.column(c)
        if column is None:
            if not table.extras_allowed:
                steps.append(Problem(path.name, "unexpected column (this table takes no extra columns)", None, c))
            continue
        steps.extend(_column_checks(column.kind, column.required, column.choices, c))
    typed = _with_parsed(typed, table, cols)
    ranked = _input_bytes(path) < PRECHECK_BYTES or _has_duplicate_keys(typed, table, cols)
    steps.extend(_key_checks(table, cols, ranked))
    _report(typed, steps, path.name, mine)
    return _Checked(typed, frame)


MAX_LANES = 4  # tables in flight at once: each collect holds one table's text on the driver


def _lanes(session: Any) -> int:
    """Tables worked on at once: the cores of a local session (one partition per CSV file)."""
    return min(_cores(session), MAX_LANES)


def _cores(session: Any) -> int:
    """The session's cores: N of local[N] (the machine's for local[*]), else the cluster's."""
    context = spark_context(session)
    if context is None:  # Spark Connect: no SparkContext here; its shuffle partitions instead
        return max(1, int(session.conf.get("spark.sql.shuffle.partitions", "2")))
    local = re.fullmatch(r"local(?:\[(\d+|\*)(?:,\d+)?\])?", context.master)
    if local is None:
        return max(1, int(context.defaultParallelism))
    threads = local.group(1)
    if threads is None:
        return 1
    return (os.cpu_count() or 1) if threads == "*" else int(threads)


def _each(lanes: ThreadPoolExecutor, work: Callable[[str], None], names: list[str]) -> None:
    """`work` on every name in the lanes; the first failure cancels what has not started and is raised."""
    futures = [lanes.submit(work, n) for n in names]
    try:
        for f in futures:
            f.result()
    except BaseException:
        for f in futures:
            f.cancel()
        wait(futures)
        raise


# -- reading ------------------------------------------------------------------------------------
def _read(session: Any, path: Path, out: Collector) -> _Read | None:
    from pyspark.sql import functions as F

    if path.is_file() and path.suffix.lower() == ".csv":
        try:
            names, _ = csv_header(path)  # on the driver, as the pandas reader: the same names
        except EmptyFile:
            out.add(Problem(path.name, "file is empty; remove it if the table does not apply"))
            return None
        except Unreadable as exc:
            out.add(Problem(path.name, str(exc)))
            return None
        return _read_csv(session, path, names, out)
    try:
        parts = parquet_parts(path) if path.is_dir() else [path]
        raw = session.read.parquet(*[str(p.resolve()) for p in parts])  # a server (sc://) has its own working folder
    except Exception as exc:  # a corrupt file: Spark raises on reading its footer
        out.add(Problem(path.name, f"unreadable Parquet file: {exc}"))
        return None
    located = raw.select("*", F.col("_metadata.file_path").alias("_file"), F.col("_metadata.row_index").alias("_at"))
    sizes = located.groupBy("_file").count().toPandas().sort_values("_file")
    offsets = session.createDataFrame(
        pd.DataFrame({"_file": sizes["_file"], "_offset": sizes["count"].cumsum() - sizes["count"]})
    )
    numbered = located.join(F.broadcast(offsets), "_file").withColumn("_row", F.col("_offset") + F.col("_at") + 1)
    text = numbered.select("_row", *[_as_text(raw, c) for c in raw.columns]).persist()
    return _Read(text, list(raw.columns), text)


def _read_csv(session: Any, path: Path, names: list[str], out: Collector) -> _Read | None:
    """Every record after the header, numbered in scan order (one split per file); the first
    record with the wrong number of fields or bytes that are not UTF-8 stops the table, as
    the pandas reader stops there."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    cols = [f"_c{i}" for i in range(len(names))]
    schema = StructType([StructField(c, StringType()) for c in cols] + [StructField("_corrupt", StringType())])
    raw = (
        session.read.schema(schema)
        .option("multiLine", True)  # one split per file: rows numbered as read; quoted line breaks
        .option("encoding", "UTF-8")
        .option("escape", '"')  # RFC 4180 quotes, as the pandas reader
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", "_corrupt")
        .csv(str(path.resolve()))
    )
    numbered = raw.withColumn("_row", F.monotonically_increasing_id()).filter("_row > 0")
    if path.stat().st_size >= PRECHECK_BYTES:  # numbered as one partition; checked on every core
        numbered = numbered.repartition(_cores(session), "_row")
    numbered = numbered.persist()
    replaced = F.lit(False)
    for c in cols:
        replaced = replaced | F.coalesce(F.col(c).contains("\ufffd"), F.lit(False))
    broken = numbered.filter(F.col("_corrupt").isNotNull() | replaced).orderBy("_row").limit(1).collect()
    if broken:
        line = broken[0]["_corrupt"]
        if line is None or "\ufffd" in line:
            out.add(Problem(path.name, "not UTF-8 text"))
        else:
            got = len(next(csv.reader([line]), []))
            out.add(
                Problem(path.name, f"malformed CSV: CSV parse error: Expected {len(names)} columns, got {got}: {line}")
            )
        numbered.unpersist()
        return None
    return _Read(numbered.select("_row", *cols), names, numbered)


def _as_text(raw: Any, name: str) -> Any:
    """A typed Parquet column as the text the pandas reader makes of it (graph/dataset.py `_as_text`)."""
    from pyspark.sql import functions as F

    kind = dict(raw.dtypes)[name]
    c = F.col(f"`{name}`")
    if kind in ("date", "timestamp", "timestamp_ntz"):
        return F.date_format(c, "yyyy-MM-dd").alias(name)
    if kind == "boolean":
        return F.when(c, "True").when(~c, "False").alias(name)
    return c.cast("string").alias(name)


def _stripped(c: Any) -> Any:
    from pyspark.sql import functions as F

    text = c.cast("string")
    edges = F.substring(text, 1, 1).isin(*SPACES) | F.substring(text, -1, 1).isin(*SPACES)
    v = F.when(edges, F.regexp_replace(text, _STRIP, "")).otherwise(text)
    return F.when(v == "", None).otherwise(v)


def _collect(frame: Any, path: Path) -> pd.DataFrame:
    """The table's text columns as read, in row order, for the driver's typing (which strips
    them as `_stripped` does)."""
    cols = [c for c in frame.columns if not c.startswith("_")]
    # sorted here, not by Spark: a global orderBy is a sampling job and a shuffle of every row
    got = frame.select("_row", *[f"`{c}`" for c in cols]).toPandas()
    got = got.iloc[np.argsort(got["_row"].to_numpy(), kind="stable")].drop(columns="_row").reset_index(drop=True)
    return got.astype({c: "str" for c in cols}).where(got.notna(), None)


# -- checks -------------------------------------------------------------------------------------
def _number(c: Any) -> Any:
    from pyspark.sql import functions as F

    n = F.expr(f"try_cast(`{c}` AS DOUBLE)")
    ok = F.col(f"`{c}`").rlike(_FINITE_NUMBER) & ~F.isnan(n) & (F.abs(n) != float("inf"))
    return F.when(ok, n)


def _with_parsed(frame: Any, table: Table, cols: list[str]) -> Any:
    """Beside each contract column's text: its parsed value (`__num_<c>`, `__date_<c>`)."""
    from pyspark.sql import functions as F

    for c in cols:
        column = table.column(c)
        if column is None:
            continue
        if column.kind in (Kind.AMOUNT, Kind.NUMBER):
            frame = frame.withColumn(f"__num_{c}", _number(c))
        elif column.kind == Kind.DATE:
            frame = frame.withColumn(
                f"__date_{c}", F.expr(f"try_to_timestamp(`{c}`, 'yyyy-M-d')").cast("date")
            ).withColumn(f"__date_{c}", F.when(F.col(f"`{c}`").rlike(r"^\d{4}-\d{1,2}-\d{1,2}$"), F.col(f"__date_{c}")))
    return frame


def _column_checks(kind: Kind, required: bool, choices: tuple[str, ...], c: str) -> list[Check]:
    """graph/dataset.py `_parse_table` / `_parse_column` / `_check_choices` for one column, in their order."""
    from pyspark.sql import functions as F

    v = F.col(f"`{c}`")
    present = v.isNotNull()
    checks = [Check(c, "required value is empty", v.isNull())] if required else []
    if kind == Kind.DATE:
        checks.append(Check(c, "not a date in YYYY-MM-DD form", present & F.col(f"__date_{c}").isNull(), v))
    elif kind == Kind.MONTH:
        checks.append(Check(c, "not a month in YYYY-MM form", present & ~v.rlike(_MONTH_PATTERN), v))
    elif kind in (Kind.AMOUNT, Kind.NUMBER):
        num = F.col(f"__num_{c}")
        checks.append(Check(c, "not a number", present & num.isNull(), v))
        if kind == Kind.AMOUNT:
            checks.append(Check(c, "negative amount", F.coalesce(num < 0, F.lit(False)), v))
    elif kind == Kind.LABEL:
        checks.append(Check(c, "label must be 0 or 1", present & ~v.isin("0", "1"), v))
    elif kind == Kind.ENTITY_TYPE:
        msg = f"entity type must be one of {', '.join(ENTITY_TYPES)}"
        checks.append(Check(c, msg, present & ~v.isin(*ENTITY_TYPES), v))
    if choices:
        if kind in (Kind.AMOUNT, Kind.NUMBER):
            num = F.col(f"__num_{c}")
            ok = num.isNull() | num.isin(*[float(x) for x in choices])
        else:
            ok = v.isin(*choices)
        checks.append(Check(c, f"must be one of {', '.join(choices)}", present & ~ok, v))
    return checks


# Below this many bytes of input a table's duplicate keys are ranked without asking first: on
# small tables the extra job costs more than the sort it would spare
PRECHECK_BYTES = 4 << 20


def _input_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def _has_duplicate_keys(frame: Any, table: Table, cols: list[str]) -> bool:
    """Whether two rows share a key: a hash aggregate, so that the ranking window of the duplicate
    check (a sort of the whole table) runs only on tables that have duplicates."""
    from pyspark.sql import functions as F

    if not table.key or not all(k in cols for k in table.key):
        return bool(table.key)
    keys = [_parsed_key(table, k).alias(f"__key{i}") for i, k in enumerate(table.key)]
    return bool(frame.groupBy(*keys).count().where(F.col("count") > 1).limit(1).collect())


def _key_checks(table: Table, cols: list[str], duplicates: bool = True) -> list[Check]:
    """graph/dataset.py `_check_keys`: dates in order, then duplicate keys (the first one stays;
    `duplicates` False: no two rows share a key, so nothing to rank)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    checks = []
    for earlier, later in table.ordered:
        if earlier in cols and later in cols:
            a, b = F.col(f"__date_{earlier}"), F.col(f"__date_{later}")
            shown = F.date_format(b, "yyyy-MM-dd")
            checks.append(Check(later, f"{later} before {earlier}", F.coalesce(b < a, F.lit(False)), shown))
    if table.key and duplicates:
        parsed = [_parsed_key(table, k) for k in table.key]
        first = F.row_number().over(Window.partitionBy(*parsed).orderBy("_row"))
        label = table.key[0] if len(table.key) == 1 else "+".join(table.key)
        shown = F.concat_ws("/", *[_key_text(table, k, p) for k, p in zip(table.key, parsed)])
        checks.append(Check(label, "duplicate id" if len(table.key) == 1 else "duplicate key", first > 1, shown))
    return checks


def _parsed_key(table: Table, k: str) -> Any:
    from pyspark.sql import functions as F

    kind = table.column(k).kind  # type: ignore[union-attr]
    if kind == Kind.DATE:
        return F.col(f"__date_{k}")
    if kind in (Kind.AMOUNT, Kind.NUMBER):
        return F.col(f"__num_{k}")
    return F.col(f"`{k}`")


def _key_text(table: Table, k: str, parsed: Any) -> Any:
    """A key value as pandas' `astype(str)` shows it."""
    from pyspark.sql import functions as F

    kind = table.column(k).kind  # type: ignore[union-attr]
    if kind == Kind.DATE:
        return F.coalesce(F.date_format(parsed, "yyyy-MM-dd"), F.lit("NaT"))
    return F.coalesce(parsed.cast("string"), F.lit("nan"))


def _report(frame: Any, steps: list[Check | Problem], file: str, out: Collector) -> None:
    """One scan: each row's failed checks exploded; per check its count and first rows."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    checks = [s for s in steps if isinstance(s, Check)]
    found: dict[int, tuple[int, list[tuple[int, str | None]]]] = {}
    if checks:
        # each check's flag and shown value as a column first (a window, e.g. duplicate keys,
        # cannot sit inside the array below)
        frame = frame.select(
            "_row",
            *[ch.failed.alias(f"__f{k}") for k, ch in enumerate(checks)],
            *[
                (ch.shown if ch.shown is not None else F.lit(None)).cast("string").alias(f"__s{k}")
                for k, ch in enumerate(checks)
            ],
        )
        failed = F.filter(
            F.array(*[F.when(F.col(f"__f{k}"), F.lit(k)) for k in range(len(checks))]), lambda x: x.isNotNull()
        )
        shown = F.array(*[F.col(f"__s{k}") for k in range(len(checks))])
        bad = frame.select("_row", F.explode(failed).alias("_check"), shown.alias("_shown")).select(
            "_row", "_check", F.element_at("_shown", F.col("_check") + 1).alias("_value")
        )
        rank = F.row_number().over(Window.partitionBy("_check").orderBy("_row"))
        counted = bad.withColumn("_n", F.count(F.lit(1)).over(Window.partitionBy("_check")))
        first = counted.withColumn("_rank", rank).filter(F.col("_rank") <= MAX_REPORTED_PROBLEMS).toPandas()
        for k, part in first.sort_values(["_check", "_row"]).groupby("_check", sort=True):
            rows = list(zip(part["_row"].astype(int), part["_value"]))
            found[int(k)] = (int(part["_n"].iloc[0]), rows)
    k = 0
    for step in steps:
        if isinstance(step, Problem):
            out.add(step)
            continue
        if k in found:
            _add(out, file, step, *found[k])
        k += 1


def _add(out: Collector, file: str, check: Check, count: int, rows: list[tuple[int, str | None]]) -> None:
    values = pd.Series([v for _, v in rows], dtype=object) if check.shown is not None else None
    out.add_rows(file, check.column, pd.Index([r - 1 for r, _ in rows]).to_numpy(), check.message, values)
    out.total += count - len(rows)


def _check_references(lanes: ThreadPoolExecutor, parsed: dict[str, Any], files: dict[str, str], out: Collector) -> None:
    """graph/dataset.py `_check_references`: every id column names a known entity. The distinct
    values of every id column of every table are checked against the ids in one job; only the
    tables with an unknown value are then scanned (in the lanes) for its rows, and the problems
    are reported in table order."""
    from functools import reduce

    from pyspark.sql import functions as F

    known = {}
    for t in ENTITY_TYPES:
        frame = parsed.get(ENTITY_TABLE[t])
        if frame is not None:
            # unique: a duplicate id was a problem, and no reference is checked after one
            known[t] = frame.select(F.lit(t).alias("_known_type"), F.col(f"`{ID_COLUMN[t]}`").alias("_id"))
    refs = {name: _references(name) for name in sorted(parsed)}
    values = [
        parsed[name]
        .where(_applies(r) & F.col(f"`{r.column}`").isNotNull())
        .select(
            F.lit(r.flag).alias("_flag"),
            F.lit(name).alias("_table"),
            F.lit(r.etype).alias("_type"),
            F.col(f"`{r.column}`").alias("_v"),
        )
        for name, table_refs in refs.items()
        for r in table_refs
        if r.etype in known
    ]
    unknown = None
    if values and known:
        ids = reduce(lambda a, b: a.unionAll(b), known.values()).where("_id IS NOT NULL")
        matched = (F.col("_type") == F.col("_known_type")) & (F.col("_v") == F.col("_id"))
        unknown = reduce(lambda a, b: a.unionAll(b), values).distinct().join(ids, matched, "left_anti").persist()
    try:
        bad = (
            {(r["_table"], r["_flag"]) for r in unknown.select("_table", "_flag").distinct().collect()}
            if unknown
            else set()
        )
        found = {name: Collector() for name in parsed}

        def check(name: str) -> None:
            _check_table_references(name, parsed[name], refs[name], known, bad, unknown, files[name], found[name])

        _each(lanes, check, sorted(parsed))
        for name in sorted(found):
            out.extend(found[name])
    finally:
        if unknown is not None:
            unknown.unpersist()


@dataclass(frozen=True)
class _Reference:
    """An id column of a table that names an entity of `etype`: every value, or (`polymorphic`)
    the values of the rows whose type column names `etype`."""

    column: str
    etype: str
    flag: str  # the column that marks its unknown values
    type_column: str | None = None


def _references(name: str) -> list[_Reference]:
    """The table's references in the pandas reader's order."""
    table = TABLES[name]
    refs = [_Reference(ref.column, ref.entity_type, f"__ref{k}") for k, ref in enumerate(table.references)]
    if table.polymorphic_ref:
        tcol, icol = table.polymorphic_ref
        refs += [_Reference(icol, etype, f"__is_{etype}", tcol) for etype in ENTITY_TYPES]
    return refs


def _applies(ref: _Reference) -> Any:
    from pyspark.sql import functions as F

    return F.lit(True) if ref.type_column is None else F.col(f"`{ref.type_column}`") == ref.etype


def _check_table_references(
    name: str,
    frame: Any,
    refs: list[_Reference],
    known: dict[str, Any],
    bad: set[tuple[str, str]],
    unknown: Any,
    file: str,
    out: Collector,
) -> None:
    from pyspark.sql import functions as F

    steps: list[Check | Problem] = []
    for ref in refs:
        if ref.type_column is not None and name == "agency_links" and ref.etype == ENTITY_TYPES[0]:
            kind = F.col(f"`{ref.type_column}`")
            msg = "agency links name persons or employers only"
            steps.append(Check(ref.type_column, msg, kind.isNotNull() & ~kind.isin(*AGENCY_LINK_TYPES), kind))
        v = F.col(f"`{ref.column}`")
        if ref.etype not in known:  # no such table: every present value is unknown
            frame = frame.withColumn(ref.flag, F.coalesce(_applies(ref) & v.isNotNull(), F.lit(False)))
        elif (name, ref.flag) in bad:  # the rows with one of the unknown values
            marked = unknown.where((F.col("_table") == name) & (F.col("_flag") == ref.flag))
            marked = marked.select(F.col("_v").alias(f"{ref.flag}_id"), F.lit(True).alias(f"{ref.flag}_hit"))
            hit = _applies(ref) & F.col(f"{ref.flag}_hit").isNotNull()
            frame = frame.join(marked, v == F.col(f"{ref.flag}_id"), "left")
            frame = frame.withColumn(ref.flag, F.coalesce(hit, F.lit(False))).drop(f"{ref.flag}_id", f"{ref.flag}_hit")
        else:
            continue
        msg = f"unknown {ref.etype} id (not in {ENTITY_TABLE[ref.etype]})"
        steps.append(Check(ref.column, msg, F.col(ref.flag), v))
    if steps:
        _report(frame, steps, file, out)
