"""The out-of-time cut (scoring/oot.py)."""

from __future__ import annotations

import pandas as pd

from riskgraph.settings import ModelSettings
from scoring.oot import cut_date, label_dates


def test_cut_leaves_the_latest_share_after_it_and_undated_labels_before() -> None:
    labels = pd.DataFrame({"as_of": [f"2025-{m:02d}-01" for m in range(1, 11)] + [None, "bad"]})
    dates = label_dates(labels)
    assert dates.isna().sum() == 2  # undated (and unreadable) labels count as known before the cut
    cut = cut_date(dates, ModelSettings(oot_share=0.2))
    assert cut == pd.Timestamp("2025-08-01") and int((dates > cut).sum()) == 2
    assert cut_date(dates, ModelSettings(oot_cut="2025-05-15")) == pd.Timestamp("2025-05-15")


def test_no_cut_without_two_dates() -> None:
    one_day = label_dates(pd.DataFrame({"as_of": ["2025-12-31"] * 5}))
    assert cut_date(one_day, ModelSettings()) is None
    assert cut_date(label_dates(pd.DataFrame({"label": [1, 0]})), ModelSettings()) is None
