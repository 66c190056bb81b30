"""The reason catalogue: stable codes and English/Chinese wording for every feature, rule and
ring type (explain/catalogue.yaml), turned into reasons in the one schema every answer uses:

    {code, direction (raises_risk | lowers_risk), value, contribution, text, text_zh}

A run's catalogue is the built-in one plus that run's rules (titles and codes) and the dataset's
data dictionary (labels and units of user columns); it is saved with the run so that answers
explained later use the same words.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from graph.contract import SENSITIVE_EXTRA_NAMES, Level, name_level
from graph.dictionary import ColumnLabel

CATALOGUE_FILE = Path(__file__).with_name("catalogue.yaml")
RAISES, LOWERS = "raises_risk", "lowers_risk"
NEIGHBOUR_PREFIX = "nb_"
INPUT_PREFIX = "input_"
SEVERITY_WORDS = {1: ("low", "低"), 2: ("medium", "中"), 3: ("high", "高"), 4: ("critical", "严重")}
_PLURAL = re.compile(r"\[([^\[\]|]*)\|([^\[\]|]*)\]")
_FIELD = re.compile(r"\{([a-z_]+)\}")
LANGS = ("en", "zh")
WORDS_CACHE = 200_000  # worded (feature, value) pairs kept per catalogue


def _count(v: float) -> str:
    return f"{round(v):,}" if abs(v - round(v)) < 0.05 else f"{v:,.1f}"


def format_value(unit: str, v: Any, lang: str) -> str:
    """A value in words for one language: thousands separators, yuan, days, months, years,
    shares as %, never scientific notation. Unknown units are shown after the number."""
    zh = lang == "zh"
    if unit == "category" or not isinstance(v, (int, float)):
        return str(v)
    v = float(v)
    if unit == "count":
        return _count(v)
    if unit == "yuan":
        amount = f"{v:,.0f}" if abs(v) >= 1 or v == 0 else f"{v:,.2f}"
        return f"{amount} 元" if zh else f"{amount} yuan"
    if unit in ("days", "months"):
        n = _count(v)
        if zh:
            return f"{n} 天" if unit == "days" else f"{n} 个月"
        return f"{n} {unit[:-1] if n == '1' else unit}"
    if unit == "years":
        n = f"{v:,.1f}".removesuffix(".0")
        return f"{n} 年" if zh else f"{n} {'year' if n == '1' else 'years'}"
    if unit == "share":
        pct = v * 100
        if 0 < pct < 0.5:
            return "不足 1%" if zh else "under 1%"
        return f"{min(pct, 100):.0f}%"
    if unit == "ratio":
        return f"{v:,.1f} 倍" if zh else f"{v:,.1f} times"
    if unit == "decimal":
        return f"{v:,.1f}"
    if unit == "score":
        return f"{v:,.2f}"
    if unit == "severity":
        words = SEVERITY_WORDS.get(int(round(v)))
        return (words[1] if zh else words[0]) if words else _count(v)
    if unit == "flag":
        return ""
    return f"{_count(v)} {unit}"  # a data dictionary's own unit (kg, persons, ...)


def render(template: str, fields: Mapping[str, Any], one: bool = False) -> str:
    """A template with its [one|many] plural picked and its {field}s filled (unknown ones kept)."""
    text = _PLURAL.sub(lambda m: m.group(1) if one else m.group(2), template)
    return _FIELD.sub(lambda m: str(fields.get(m.group(1), m.group(0))), text)


def _present(value: object) -> bool:
    if value is None or value == "":
        return False
    return not (isinstance(value, float) and math.isnan(value))


@dataclass(frozen=True)
class Entry:
    code: str
    unit: str
    en: str
    zh: str
    zero_en: str = ""
    zero_zh: str = ""
    context_en: str = ""
    context_zh: str = ""

    @staticmethod
    def of(raw: Mapping[str, Any]) -> Entry:
        return Entry(**{k: raw[k] for k in Entry.__dataclass_fields__ if k in raw})


@dataclass
class Catalogue:
    """Wording of one run. `rules`: rule id -> (code, English title, Chinese title)."""

    version: str
    features: dict[str, Entry]
    ring_types: dict[str, dict[str, str]]
    relations: dict[str, dict[str, str]]
    context_defaults: dict[str, dict[str, str]]
    texts: dict[str, dict[str, str]]  # rule_template, grade_cap, improve
    rules: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    columns: dict[str, ColumnLabel] = field(default_factory=dict)
    # (feature, value) -> words, for calls without context: the API words the same counts and
    # categories over and over
    _words: dict[tuple[str, Any], tuple[str, str, str] | None] = field(default_factory=dict, repr=False, compare=False)
    # (feature, value, the context fields its templates can name) -> words, for the pipeline's
    # explained rows: thousands of rows share a count and a ring
    _in_context: dict[tuple[Any, ...], tuple[str, str, str] | None] = field(
        default_factory=dict, repr=False, compare=False
    )
    _fields_of: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False, compare=False)

    # -- building -----------------------------------------------------------------------------

    def for_run(
        self, *, rules: Mapping[str, tuple[str, str, str]], columns: Mapping[str, ColumnLabel] | None = None
    ) -> Catalogue:
        """This catalogue with a run's rules and the dataset's data dictionary."""
        return Catalogue(
            self.version,
            self.features,
            self.ring_types,
            self.relations,
            self.context_defaults,
            self.texts,
            dict(rules),
            dict(columns or {}),
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": self.version,
                "rules": self.rules,
                "columns": {c: label.to_dict() for c, label in self.columns.items()},
            },
            ensure_ascii=False,
            sort_keys=True,
        )

    @staticmethod
    def from_json(text: str) -> Catalogue:
        """A run's catalogue saved by to_json (the built-in wording of that version)."""
        doc = json.loads(text)
        base = built_in()
        rules = {k: (v[0], v[1], v[2]) for k, v in doc.get("rules", {}).items()}
        columns = {c: ColumnLabel.from_dict(v) for c, v in doc.get("columns", {}).items()}
        return base.for_run(rules=rules, columns=columns)

    # -- what may be explained -----------------------------------------------------------------

    def is_protected(self, feature: str) -> bool:
        """Features from personal or sensitive_personal columns (gender, age, health, ...) are
        never used in reasons: the level of the input column the feature comes from
        (graph/contract.py for built-in features, the data dictionary for extra columns)."""
        base = feature.removeprefix(NEIGHBOUR_PREFIX)
        for rel in self.relations:
            if feature.startswith(NEIGHBOUR_PREFIX + rel + "_"):
                base = feature[len(NEIGHBOUR_PREFIX + rel) + 1 :]
        if base in self.features:
            level = feature_level(base)
            return level is not None and level.is_personal
        label = self.columns.get(_column_name(base))
        if label is None or label.level is None:  # unclassified: only its name can say sensitive
            return _column_name(base).lower() in SENSITIVE_EXTRA_NAMES
        return label.level.is_personal

    # -- wording ------------------------------------------------------------------------------

    def describe(
        self, feature: str, value: Any, context: Mapping[str, Any] | None = None
    ) -> tuple[str, str, str] | None:
        """(code, English, Chinese) for one feature value; None when it must not or cannot be
        put in words (protected attributes, missing values)."""
        if not context:
            return self._kept(self._words, (feature, value), feature, value, {})
        key = (feature, value, *(context.get(f) for f in self._context_fields(feature)))
        return self._kept(self._in_context, key, feature, value, context)

    def _kept(
        self, cache: dict[Any, Any], key: tuple[Any, ...], feature: str, value: Any, context: Mapping[str, Any]
    ) -> tuple[str, str, str] | None:
        """The words kept in `cache` under `key`, worded and kept on first use."""
        try:
            return cache[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable value: word it each time
            return self._describe(feature, value, context)
        if len(cache) > WORDS_CACHE:
            cache.clear()
        words = cache[key] = self._describe(feature, value, context)
        return words

    def _context_fields(self, feature: str) -> tuple[str, ...]:
        """Every context field a feature's wording can read (more than it needs is harmless):
        the fields its catalogue entry's templates name, and for a ring feature the ring's own."""
        fields = self._fields_of.get(feature)
        if fields is None:
            names: set[str] = set()
            entries = [self.features.get(feature)]
            if feature.startswith("ring_"):
                names |= {"ring_type", "ring"}
                entries.append(self.features.get("rings"))
            for e in entries:
                if e is not None:
                    for text in (e.en, e.zh, e.zero_en, e.zero_zh, e.context_en, e.context_zh):
                        names.update(_FIELD.findall(text))
            fields = self._fields_of[feature] = tuple(sorted(names - {"v"}))
        return fields

    def _describe(self, feature: str, value: Any, context: Mapping[str, Any]) -> tuple[str, str, str] | None:
        if not _present(value) or self.is_protected(feature):
            return None
        if feature.startswith(NEIGHBOUR_PREFIX):
            return self._neighbour(feature, value)
        if feature.startswith("rule_") and feature[5:] in self.rules:
            code, en, zh = self.rules[feature[5:]]
            return self._fill(code, self.texts["rule_template"], "count", value, {"title": (en, zh)})
        if feature.startswith("ring_") and feature[5:] in self.ring_types:
            ring = self.ring_types[feature[5:]]
            if _is_zero(value):
                return ring["code"], f"Not in {ring['en']}", f"未发现{ring['zh']}"
            if context.get("ring_type") == feature[5:] and _present(context.get("ring")):
                return self.describe("rings", 1.0, context)  # the entity's own ring, named
            return ring["code"], f"Member of {ring['en']}", f"属于{ring['zh']}"
        entry = self.features.get(feature)
        if entry is not None:
            return self._entry(entry, value, context)
        label = self.columns.get(_column_name(feature))
        name_en = label.label_en if label else _column_name(feature)
        name_zh = label.label_zh if label else _column_name(feature)
        unit = label.unit if label and label.unit else ("count" if isinstance(value, (int, float)) else "category")
        code = "RG-U-" + _column_name(feature)
        if unit == "flag":
            return (
                code,
                f"{name_en}: {'yes' if not _is_zero(value) else 'no'}",
                f"{name_zh}：{'是' if not _is_zero(value) else '否'}",
            )
        return code, f"{name_en}: {format_value(unit, value, 'en')}", f"{name_zh}：{format_value(unit, value, 'zh')}"

    def _entry(self, entry: Entry, value: Any, context: Mapping[str, Any]) -> tuple[str, str, str]:
        if entry.unit == "flag":
            return (entry.code, entry.zero_en, entry.zero_zh) if _is_zero(value) else (entry.code, entry.en, entry.zh)
        en, zh = entry.en, entry.zh
        if entry.context_en and all(_present(context.get(f)) for f in _FIELD.findall(entry.context_en) if f != "v"):
            en, zh = entry.context_en, entry.context_zh
        fields = {f: context.get(f) for f in _FIELD.findall(en) if f != "v"}
        texts = {"en": en, "zh": zh, "zero_en": entry.zero_en, "zero_zh": entry.zero_zh}
        return self._fill(entry.code, texts, entry.unit, value, fields)

    def _fill(
        self, code: str, texts: Mapping[str, str], unit: str, value: Any, fields: Mapping[str, Any]
    ) -> tuple[str, str, str]:
        out = []
        for i, lang in enumerate(LANGS):
            shown = format_value(unit, value, lang)
            values: dict[str, Any] = {"v": shown}
            for name, given in fields.items():
                if isinstance(given, (tuple, list)) and len(given) == 2:
                    given = given[i]
                elif isinstance(given, (int, float)) and _present(given):
                    given = format_value("count", given, lang)
                if not _present(given):
                    given = self.context_defaults.get(name, {}).get(lang, "")
                values[name] = given
            zero = _is_zero(value) or (unit in ("count", "days", "months") and shown.split(" ")[0] == "0")
            template = texts["zero_" + lang] if zero and texts.get("zero_" + lang) else texts[lang]
            one = isinstance(value, (int, float)) and _count(float(value)) == "1"
            out.append(_capitalise(render(template, values, one)))
        return code, out[0], out[1]

    def _neighbour(self, feature: str, value: Any) -> tuple[str, str, str] | None:
        for rel, words in self.relations.items():
            prefix = NEIGHBOUR_PREFIX + rel + "_"
            if not feature.startswith(prefix):
                continue
            base = feature[len(prefix) :]
            entry = self.features.get(base)
            if entry is not None and entry.unit == "flag":  # the share of linked entities flagged
                code = entry.code
                en = f"{words['en']}: {format_value('share', value, 'en')} {lower_first(entry.en)}"
                zh = f"{words['zh']}：{format_value('share', value, 'zh')} {entry.zh}"
            else:
                inner = self.describe(base, value)
                if inner is None:
                    return None
                code, en, zh = inner
                en, zh = f"{words['en']}, on average: {lower_first(en)}", f"{words['zh']}（平均）：{zh}"
            family, number = code.split("-", 2)[1:3]
            return f"RG-N{words['letter']}-{family}{number}", en, zh
        return None

    # -- whole reasons --------------------------------------------------------------------------

    def reason(
        self, feature: str, value: Any, contribution: float, context: Mapping[str, Any] | None = None
    ) -> dict[str, Any] | None:
        words = self.describe(feature, value, context)
        if words is None:
            return None
        code, en, zh = words
        return {
            "code": code,
            "direction": RAISES if contribution > 0 else LOWERS,
            "value": _json_value(value),
            "contribution": round(float(contribution), 4),
            "text": en,
            "text_zh": zh,
        }

    def cap_reason(self, cap: str, rule_id: str | None) -> dict[str, Any]:
        _, en_title, zh_title = self.rules.get(rule_id or "", ("", rule_id or "a rule", rule_id or "规则"))
        t = self.texts["grade_cap"]
        return {
            "code": t["code"],
            "direction": RAISES,
            "value": cap,
            "contribution": None,
            "text": render(t["en"], {"cap": cap, "title": en_title}, False),
            "text_zh": render(t["zh"], {"cap": cap, "title": zh_title}, False),
        }


def _is_zero(value: Any) -> bool:
    return isinstance(value, (int, float)) and float(value) == 0.0


def _json_value(v: Any) -> Any:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return round(v, 4)
    if hasattr(v, "item"):  # numpy scalars
        return _json_value(v.item())
    return str(v)


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:] if text[:1].islower() else text


def lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def _column_name(feature: str) -> str:
    while feature.startswith(INPUT_PREFIX):
        feature = feature[len(INPUT_PREFIX) :]
    return feature


def feature_level(feature: str) -> Level | None:
    """The contract level of the input column a built-in feature is read from (gender ->
    gender, birth_date_years_ago -> birth_date); None for a feature computed from many."""
    return name_level(feature) or (
        name_level(feature.removesuffix("_years_ago")) if feature.endswith("_years_ago") else None
    )


@cache
def built_in() -> Catalogue:
    """The catalogue shipped with RiskGraph (explain/catalogue.yaml)."""
    doc = yaml.safe_load(CATALOGUE_FILE.read_text(encoding="utf-8"))
    return Catalogue(
        version=str(doc["version"]),
        features={k: Entry.of(v) for k, v in doc["features"].items()},
        ring_types=doc["ring_types"],
        relations=doc["relations"],
        context_defaults=doc["context_defaults"],
        texts={"rule_template": doc["rule_template"], "grade_cap": doc["grade_cap"], "improve": doc["improve"]},
    )
