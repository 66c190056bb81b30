"""docs/reasons.md from the catalogue and the default rule pack (`python -m explain.reason_docs`
rewrites it; a test checks it is current)."""

from __future__ import annotations

import sys
from pathlib import Path

from explain.catalogue import Catalogue, built_in
from rules.pack import DEFAULT_PACK_DIR, load_packs

DOC = Path(__file__).resolve().parent.parent / "docs" / "reasons.md"

INTRO = """# Reason codes

Every reason RiskGraph gives (scores.csv `reasons`, credit answers, risk lists, the pages) has
this schema:

```json
{{"code": "RG-M-006", "direction": "raises_risk", "value": 3, "contribution": 0.84,
 "text": "Visited 3 clinics on a single day", "text_zh": "单日在 3 家医疗机构就诊"}}
```

- `direction`: `raises_risk` or `lowers_risk` (a good grade is explained as well as a bad one);
- `value`: the entity's value (a grade for a rule cap); `contribution`: the push on the score in
  log-odds (null for a rule cap);
- `text` / `text_zh`: the wording below, with the value formatted (thousands separators, yuan,
  days, months, shares as %), English plurals, and context where known (the pharmacy a clinic's
  patients use, the ring an entity is in). Credit answers take `lang=en|zh`: `text` is then in
  that language; `text_zh` is always Chinese.

An answer gives at most 4 reasons, strongest first; a grade cap by a rule always comes first.
Credit answers also carry `to_improve` (the nearest better band, the points it needs and the
reason codes that hold the grade back) and `reason_catalogue`, the catalogue version
(now **{version}**).

Features read from columns at the sensitive_personal level (gender, age, health: the contract's
classification in graph/contract.py, or `level: sensitive_personal` in the data dictionary) never
appear in reasons, and are not model features unless the `model.use_protected_attributes`
setting opts them in. Personal columns (names, id numbers, contact details, and extra columns
the dictionary does not classify) are never features. See docs/data-contract.md.

## User columns and the data dictionary

Extra input columns classified public or internal become model features. Their reasons read
`label: value` with the label and unit of the dataset's data dictionary (`columns.yaml` or
`columns.csv` in the dataset folder: column, label_en, label_zh, unit, level); without a label,
the raw column name is used. Their
code is `RG-U-<column>`. `riskgraph synth` writes a `columns.yaml` for its extra columns.

Units: count, yuan, days, months, years, share, ratio, decimal, score, severity, category, flag,
or any other text shown after the number.

## Features averaged over linked entities

A feature `nb_<relation>_<type>_<feature>` is the mean of a linked entity's feature; its code is
`RG-N<letter>-<family><number>` of the base feature (e.g. `RG-NV-M027`: the clinics a person
visited, on average, `RG-M-027`). Its text reads "<linked entities>, on average: <base text>".

| relation | letter | English | Chinese |
|---|---|---|---|
{relations}

## Features

| code | feature | unit | English | Chinese |
|---|---|---|---|---|
{features}

## Ring types

| code | ring type | English | Chinese |
|---|---|---|---|
{rings}

## Rules (default pack)

A rule hit reads "Flagged by the rule: <title>". Rules of other packs without a `reason_code`
get `RG-R-<rule id>`. `serious: true` marks serious discredit (grade capped at D, first in triage).

| code | rule | serious | English title | Chinese title |
|---|---|---|---|---|
{rules}

## Grade caps

`{cap_code}`: "{cap_en}" / "{cap_zh}".
"""


def render(catalogue: Catalogue | None = None) -> str:
    c = catalogue or built_in()
    relations = "\n".join(f"| `{r}` | {w['letter']} | {w['en']} | {w['zh']} |" for r, w in c.relations.items())
    features = "\n".join(
        f"| {e.code} | `{name}` | {e.unit} | {_cell(e.en)}{' (sensitive personal: never shown)' if c.is_protected(name) else ''} "
        f"| {_cell(e.zh)} |"
        for name, e in sorted(c.features.items(), key=lambda kv: kv[1].code)
    )
    rings = "\n".join(f"| {w['code']} | `{t}` | {w['en']} | {w['zh']} |" for t, w in c.ring_types.items())
    rules = "\n".join(
        f"| {r.code} | `{r.id}` | {'yes' if r.serious else ''} | {_cell(r.title_en)} | {_cell(r.title_zh)} |"
        for p in load_packs(DEFAULT_PACK_DIR)
        for r in p.rules
    )
    cap = c.texts["grade_cap"]
    return INTRO.format(
        version=c.version,
        relations=relations,
        features=features,
        rings=rings,
        rules=rules,
        cap_code=cap["code"],
        cap_en=cap["en"],
        cap_zh=cap["zh"],
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


if __name__ == "__main__":
    DOC.write_text(render(), encoding="utf-8")
    sys.stdout.write(f"wrote {DOC}\n")
