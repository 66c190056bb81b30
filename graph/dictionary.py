"""The optional data dictionary of a dataset folder (`columns.yaml` or `columns.csv`): labels and
units that turn user columns into readable reasons, and the level of each extra column.

Fields per column: column*, label_en, label_zh, unit (a catalogue unit such as count, yuan,
days, share, flag, category, or any text shown after the number), level (public, internal,
personal or sensitive_personal: graph/contract.py `Level`; an extra column not given one is
personal), protected (true/false; kept for older dictionaries: true means sensitive_personal).
A level applies to the dataset's extra columns of that name; contract columns keep the contract's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from graph.contract import Level, parse_level
from riskgraph.errors import InvalidDataset, Problem

DICTIONARY_FILES = ("columns.yaml", "columns.yml", "columns.csv")
FIELDS = ("column", "label_en", "label_zh", "unit", "level", "protected")
TRUE, FALSE = {"true", "1", "yes"}, {"false", "0", "no", ""}


@dataclass(frozen=True)
class ColumnLabel:
    column: str
    label_en: str
    label_zh: str
    unit: str = ""
    level: Level | None = None  # None: not classified (an extra column is then personal)

    @property
    def protected(self) -> bool:
        """Declared sensitive_personal (gender, age, health and the like)."""
        return self.level is Level.SENSITIVE

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["level"] = self.level.value if self.level else None
        return d

    @staticmethod
    def from_dict(d: dict[str, Any]) -> ColumnLabel:
        """From to_dict (or an older run's catalogue, with `protected`)."""
        level = parse_level(str(d["level"])) if d.get("level") else None
        if level is None and d.get("protected"):
            level = Level.SENSITIVE
        return ColumnLabel(**{k: d[k] for k in FIELDS[:4] if k in d}, level=level)


def dictionary_file(folder: Path) -> Path | None:
    found = [folder / n for n in DICTIONARY_FILES if (folder / n).is_file()]
    if len(found) > 1:
        raise InvalidDataset([Problem(found[1].name, f"two data dictionaries: keep {found[0].name} or this one")])
    return found[0] if found else None


def load_dictionary(folder: str | Path) -> dict[str, ColumnLabel]:
    """The folder's data dictionary by column name ({} without one); InvalidDataset naming the
    file, row and field of every problem."""
    path = dictionary_file(Path(folder))
    if path is None:
        return {}
    rows = _rows(path)
    problems: list[Problem] = []
    out: dict[str, ColumnLabel] = {}
    for i, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            problems.append(Problem(path.name, f"expected a mapping of {', '.join(FIELDS)}", row=i))
            continue
        unknown = sorted(set(map(str, row)) - set(FIELDS))
        if unknown:
            problems.append(Problem(path.name, f"unknown field(s) {unknown}; fields are {', '.join(FIELDS)}", row=i))
        column = str(row.get("column") or "").strip()
        if not column:
            problems.append(Problem(path.name, "required", row=i, column="column"))
            continue
        if column in out:
            problems.append(Problem(path.name, f"{column!r} is listed twice", row=i, column="column"))
        flag = str(row.get("protected", "")).strip().lower()
        if flag not in TRUE | FALSE:
            problems.append(Problem(path.name, f"expected true or false, got {flag!r}", row=i, column="protected"))
        text = {k: "" if row.get(k) is None or pd.isna(row.get(k)) else str(row[k]).strip() for k in FIELDS[1:5]}
        level = parse_level(text["level"]) if text["level"] else None
        if text["level"] and level is None:
            names = ", ".join(lv.value for lv in Level)
            problems.append(
                Problem(path.name, f"expected one of {names}, got {text['level']!r}", row=i, column="level")
            )
        if flag in TRUE:
            if level not in (None, Level.SENSITIVE):
                problems.append(
                    Problem(path.name, f"protected: true contradicts level {level.value}", row=i, column="level")
                )
            level = Level.SENSITIVE
        out[column] = ColumnLabel(
            column,
            text["label_en"] or column,
            text["label_zh"] or text["label_en"] or column,
            text["unit"],
            level,
        )
    if problems:
        raise InvalidDataset(problems)
    return out


def _rows(path: Path) -> list[Any]:
    try:
        if path.suffix == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig").to_dict("records")
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, pd.errors.ParserError) as exc:
        raise InvalidDataset([Problem(path.name, f"cannot read the data dictionary: {exc}")]) from exc
    if isinstance(doc, dict) and "columns" in doc:
        doc = doc["columns"]
    if isinstance(doc, dict):  # {column: {label_en: ...}}
        return [{"column": k, **(v or {})} if isinstance(v, dict) else v for k, v in doc.items()]
    if isinstance(doc, list):
        return doc
    raise InvalidDataset([Problem(path.name, "expected a list of columns (or a mapping column -> fields)")])
