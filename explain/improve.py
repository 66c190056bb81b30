""" "What would raise the grade": the nearest better band, the points it needs and the reasons
that hold the entity back (the risk-raising ones, strongest first)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from explain.catalogue import RAISES, Catalogue, lower_first, render

HELD_BACK_BY = 2  # reasons named in the line


def improvement(
    *,
    points: float,
    grade: str,
    score_grade: str,
    bands: Mapping[str, float],
    reasons: Sequence[Mapping[str, Any]],
    catalogue: Catalogue,
) -> dict[str, Any]:
    """{next_grade, points_needed, held_back_by (codes), text, text_zh}; next_grade is None when
    the grade is the best one or a rule cap holds it."""
    t = catalogue.texts["improve"]
    if grade != score_grade:
        return _line(None, None, [], render(t["capped_en"], {"cap": grade}), render(t["capped_zh"], {"cap": grade}))
    better = sorted(((g, float(v)) for g, v in bands.items() if float(v) > points), key=lambda gv: gv[1])
    if not better:
        return _line(None, None, [], t["top_en"], t["top_zh"])
    next_grade, threshold = better[0]
    needed = max(1, int(-(-(threshold - points) // 1)))  # whole points, rounded up
    held = [r for r in reasons if r.get("direction") == RAISES and r.get("contribution") is not None]
    held = held[:HELD_BACK_BY]
    fields = {"grade": next_grade, "points": f"{threshold:,.0f}", "needed": f"{needed:,}"}
    en, zh = render(t["en"], fields, one=needed == 1), render(t["zh"], fields)
    if held:
        en += "; " + render(t["held_en"], {"reasons": "; ".join(lower_first(_short(str(r["text"]))) for r in held)})
        zh += "；" + render(t["held_zh"], {"reasons": "；".join(_short(str(r["text_zh"])) for r in held)})
    return _line(next_grade, needed, [str(r["code"]) for r in held], en, zh)


def _line(grade: str | None, needed: int | None, codes: list[str], en: str, zh: str) -> dict[str, Any]:
    return {"next_grade": grade, "points_needed": needed, "held_back_by": codes, "text": en, "text_zh": zh}


def _short(text: str) -> str:
    """A reason without its ring's particulars (named on the reason itself)."""
    return text.split(" (ring ")[0].split("（团伙 ")[0]
