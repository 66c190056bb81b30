"""Numpy helpers shared by the builders: a column-wise row accumulator, a regional sampler, day and money."""

from __future__ import annotations

import numpy as np

from synth.params import MONTH_STARTS


class Rows:
    """Column-wise accumulator of numpy parts, concatenated once."""

    def __init__(self, *columns: str) -> None:
        self.columns = columns
        self.parts: list[dict[str, np.ndarray]] = []

    def add(self, **values: np.ndarray | float | int) -> None:
        lengths = [np.size(v) for v in values.values() if np.ndim(v) > 0]
        if not lengths or min(lengths) == 0:
            return
        n = max(lengths)
        assert set(values) == set(self.columns), set(values) ^ set(self.columns)
        self.parts.append({k: np.broadcast_to(np.asarray(v), (n,)).copy() for k, v in values.items()})

    def concat(self) -> dict[str, np.ndarray]:
        return {c: np.concatenate([p[c] for p in self.parts]) for c in self.columns}


class RegionalSampler:
    """Draws facilities in a given region with probability proportional to a weight."""

    def __init__(self, region: np.ndarray, weight: np.ndarray, n_regions: int) -> None:
        order = np.lexsort((np.arange(len(region)), region))
        r, w = region[order], weight[order].astype(float)
        if np.any(np.bincount(r, minlength=n_regions) == 0):
            raise AssertionError("every region needs a facility")
        total = np.bincount(r, weights=w, minlength=n_regions)
        cum = np.cumsum(w)
        first = np.searchsorted(r, np.arange(n_regions))
        within = cum - (cum[first] - w[first])[r]
        cdf = r + within / total[r]
        last = np.r_[first[1:], len(r)] - 1
        cdf[last] = np.arange(n_regions) + 1.0
        self.order, self.cdf = order, cdf

    def pick(self, region: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        q = region + rng.random(len(region))
        pos = np.searchsorted(self.cdf, q, side="right")
        return self.order[np.minimum(pos, len(self.cdf) - 1)]


def month_of(day: np.ndarray) -> np.ndarray:
    """Month index 0..11 of a day offset; -1 before the year, 12 after it."""
    return np.searchsorted(MONTH_STARTS, day, side="right") - 1


def money(x: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(x, dtype=float), 2)


def unique_codes(rng: np.random.Generator, n: int, low: int, high: int) -> np.ndarray:
    return low + rng.choice(high - low, size=n, replace=False)
