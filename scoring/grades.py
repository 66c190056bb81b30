"""Risk probability -> credit points (scorecard scaling) -> grade bands, with rule caps."""

from __future__ import annotations

import numpy as np
import pandas as pd

from riskgraph.settings import GradeBands, Scorecard

GRADE_ORDER = ("A", "B", "C", "D")
_EPS = 1e-6


def credit_points(risk: np.ndarray, card: Scorecard) -> np.ndarray:
    """Points = base + pdo/ln2 * ln(good:bad odds / base odds), clipped to the card's range."""
    p = np.clip(np.asarray(risk, dtype=np.float64), _EPS, 1 - _EPS)
    odds = (1 - p) / p
    points = card.base_points + card.pdo / np.log(2) * np.log(odds / card.base_odds)
    return np.asarray(np.clip(points, card.min_points, card.max_points), dtype=np.float64)


def grades(points: np.ndarray, bands: GradeBands) -> np.ndarray:
    """Grade per points value by the configured bands."""
    points = np.asarray(points)
    return np.select([points >= bands.A, points >= bands.B, points >= bands.C], ["A", "B", "C"], "D")


def apply_caps(grade: pd.Series, cap: pd.Series) -> pd.Series:
    """The worse of the score's grade and a rule's cap (e.g. serious discredit caps at D)."""
    g = pd.Categorical(grade.to_numpy(), categories=GRADE_ORDER).codes
    c = pd.Categorical(cap.to_numpy(), categories=GRADE_ORDER).codes  # -1: no cap
    if (g < 0).any():
        raise ValueError(f"not a grade: {grade[g < 0].iloc[0]!r} (grades are {', '.join(GRADE_ORDER)})")
    return pd.Series(np.asarray(GRADE_ORDER)[np.maximum(g, c)], index=grade.index)


def bands_text(bands: GradeBands) -> str:
    return f"A>={bands.A:g}, B>={bands.B:g}, C>={bands.C:g}, D<{bands.C:g}"
