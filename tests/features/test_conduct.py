"""Good conduct (守信) and labour-supervision signals: features from the supervision tables and
contributions, worded as risk-lowering (or raising) reasons in English and Chinese."""

from __future__ import annotations

import pandas as pd

from explain.catalogue import built_in
from features.build import build_features
from graph.dataset import dataset_from_frames
from graph.projection import Projection


def _dataset(with_supervision: bool):
    months = pd.period_range("2023-01", "2025-12", freq="M").astype(str)
    contributions = pd.DataFrame(
        {
            "employer_id": ["E1"] * 36 + ["E2"] * 3,
            "person_id": ["P1"] * 36 + ["P2"] * 3,
            "month": list(months) + ["2025-10", "2025-11", "2025-12"],
            "due": [100.0] * 39,
            "paid": [100.0] * 36 + [100.0, 0.0, 20.0],
        }
    )
    frames = {
        "persons": pd.DataFrame({"person_id": ["P1", "P2"]}),
        "employers": pd.DataFrame({"employer_id": ["E1", "E2"]}),
        "contributions": contributions,
    }
    if with_supervision:
        frames["commitments"] = pd.DataFrame(
            {
                "commitment_id": ["K1", "K2", "K3"],
                "entity_type": ["employer", "employer", "person"],
                "entity_id": ["E1", "E2", "P1"],
                "date": ["2024-01-01", "2025-01-01", "2025-02-01"],
                "kind": ["credit_commitment", "correction_pledge", "credit_commitment"],
                "fulfilled": [1, 0, 1],
            }
        )
        frames["inspections"] = pd.DataFrame(
            {
                "inspection_id": ["I1", "I2", "I3"],
                "employer_id": ["E1", "E2", "E2"],
                "date": ["2025-03-01", "2025-04-01", "2025-05-01"],
                "finding": ["wages", "hours", "none"],
                "severity": [1, 2, 1],
                "penalty_amount": [None, 5000.0, None],
                "corrected_date": ["2025-03-10", None, None],
            }
        )
        frames["wage_arrears"] = pd.DataFrame(
            {
                "employer_id": ["E2"],
                "month": ["2025-06"],
                "persons_affected": [12],
                "amount_owed": [40000.0],
                "amount_repaid": [10000.0],
            }
        )
    return dataset_from_frames(frames)


def test_good_conduct_becomes_features() -> None:
    ds = _dataset(True)
    f = build_features(ds, Projection(ds))
    e, p = f["employer"], f["person"]
    assert e.loc["E1", "months_paid_in_full"] == 36 and e.loc["E2", "months_paid_in_full"] == 1
    assert e.loc["E1", "commitments_fulfilled"] == 1 and e.loc["E2", "commitments_broken"] == 1
    assert e.loc["E1", "findings_corrected"] == 1 and e.loc["E2", "inspection_violations"] == 1
    assert e.loc["E2", "wages_owed"] == 30000 and e.loc["E2", "inspection_penalties"] == 5000
    assert p.loc["P1", "commitments_fulfilled"] == 1
    assert p.loc["P1", "months_paid_in_full"] == 36 and p.loc["P2", "months_paid_in_full"] == 1


def test_without_the_tables_the_features_are_as_before() -> None:
    ds = _dataset(False)
    f = build_features(ds, Projection(ds))
    assert not {"commitments_fulfilled", "inspection_violations", "wages_owed"} & set(f["employer"].columns)


def test_good_conduct_reads_as_a_risk_lowering_reason() -> None:
    cat = built_in()
    months = cat.reason("months_paid_in_full", 36, -0.42)
    assert months is not None and months["direction"] == "lowers_risk"
    assert months["text"] == "36 months of contributions paid on time" and months["code"] == "RG-T-001"
    assert months["text_zh"] == "按时足额缴费 36 个月"
    kept = cat.reason("commitments_fulfilled", 2, -0.1)
    assert kept is not None and kept["text"] == "2 commitments fulfilled" and kept["text_zh"] == "履行信用承诺 2 项"
    corrected = cat.reason("findings_corrected", 1, -0.05)
    assert corrected is not None and corrected["text"] == "1 inspection finding corrected"
