"""Labels from labels.csv and decided cases, and the point-in-time cut at a label's as_of."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from composer.labels import cut_at, merge_labels, training_rows, with_labels
from composer.pipeline import model_matrices
from graph.dataset import Dataset, load_dataset
from riskgraph.server_keys import Tokens
from riskgraph.settings import Settings
from tests.factories import SAMPLE
from tests.processes import child_pids


def _cases(rows: list[tuple[str, str, int, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "entity_type": t,
                "entity_id": i,
                "label": y,
                "as_of": d,
                "case_id": f"CASE-{i}",
                "decided_by": "investigator:b",
                "decided_at": d,
                "source": "case",
            }
            for t, i, y, d in rows
        ]
    )


def test_the_later_dated_label_wins_and_conflicts_are_listed() -> None:
    file = pd.DataFrame(
        {
            "entity_type": ["person", "person", "person"],
            "entity_id": ["a", "b", "c"],
            "label": [1, 0, 1],
            "as_of": pd.to_datetime(["2025-12-31", "2025-12-31", "2027-01-01"]),
        }
    )
    cases = _cases(
        [("person", "a", 0, "2026-03-01"), ("person", "c", 0, "2026-03-01"), ("person", "d", 1, "2026-03-01")]
    )
    merged, conflicts = merge_labels(file, cases)
    got = merged.set_index("entity_id")
    assert got["label"].to_dict() == {"a": 0, "b": 0, "c": 1, "d": 1}
    assert got["source"].to_dict() == {"a": "case", "b": "labels.csv", "c": "labels.csv", "d": "case"}
    assert got.loc["a", "case_id"] == "CASE-a"
    assert conflicts[["entity_id", "kept"]].to_dict("records") == [
        {"entity_id": "a", "kept": "case"},
        {"entity_id": "c", "kept": "labels.csv"},
    ]


@pytest.fixture(scope="module")
def sample() -> Dataset:
    return load_dataset(SAMPLE)


def test_cut_at_keeps_only_what_was_known_that_day(sample: Dataset) -> None:
    day = pd.Timestamp("2025-09-30")
    cut = cut_at(sample, day)
    assert cut.table("visits")["date"].max() <= day < sample.table("visits")["date"].max()
    months = cut.table("contributions")["month"]
    assert len(months) and months.max() == "2025-09"
    ends = cut.table("employment")["end_date"].dropna()
    assert (ends <= day).all()
    assert len(cut.table("persons")) == len(sample.table("persons"))


def test_features_dated_after_as_of_do_not_move_the_training_row(sample: Dataset) -> None:
    """A case confirmed (as_of mid-year) for a person: later visits of that person change the
    row the model scores today, never the row it learns the label from."""
    settings = Settings(progress=False)
    visits = sample.table("visits")
    pid = str(visits["person_id"].value_counts().index[0])
    as_of = "2025-06-30"
    labels, _ = merge_labels(sample.table("labels"), _cases([("person", pid, 1, as_of)]))
    later = visits[visits["person_id"] == pid].head(6).copy()
    later["visit_id"] = [f"LATE{i}" for i in range(len(later))]
    later["date"] = pd.to_datetime(
        ["2025-08-01", "2025-08-01", "2025-09-09", "2025-10-10", "2025-11-11", "2025-12-12"][: len(later)]
    )
    more = Dataset({**sample.tables, "visits": pd.concat([visits, later], ignore_index=True)}, "with-later-visits")

    def matrices(d: Dataset) -> dict[str, pd.DataFrame]:
        return model_matrices(d, settings, set(), Tokens(b"k" * 32))

    before, after = with_labels(sample, labels), with_labels(more, labels)
    row_before = training_rows(before, labels, matrices, 12)["person"].loc[pid]
    row_after = training_rows(after, labels, matrices, 12)["person"].loc[pid]
    pd.testing.assert_series_equal(row_before, row_after)
    today_before, today_after = matrices(before)["person"].loc[pid], matrices(after)["person"].loc[pid]
    assert not today_before.equals(today_after)  # the later visits are real: they move today's row
    # only the case's label needed a cut (labels.csv's as_of is the data's last day)
    assert list(training_rows(before, labels, matrices, 12)["person"].index) == [pid]


def test_a_run_trains_labels_dated_before_the_data_ends_on_their_cut(tmp_path) -> None:
    """The whole run: labels.csv rows dated mid-year are trained on rows cut at their as_of."""
    import shutil

    from composer.pipeline import run_pipeline

    data = tmp_path / "data"
    shutil.copytree(SAMPLE, data)
    labels = pd.read_csv(data / "labels.csv", dtype=str)
    persons = labels.index[labels["entity_type"] == "person"][:10]
    labels.loc[persons, "as_of"] = "2025-06-30"
    labels.to_csv(data / "labels.csv", index=False)
    settings = Settings(
        home=tmp_path / "home", progress=False, model={"n_estimators": 40, "folds": 3, "threads": 1, "explain_top": 50}
    )
    run = run_pipeline(data=data, out=None, settings=settings)
    assert run.manifest["labels"]["point_in_time_rows"] == {"person": 10}
    assert run.models["person"].kind == "supervised"


def test_cut_days_shared_between_lanes_give_the_same_rows(sample: Dataset) -> None:
    """Five cut days built on one lane, and on two and three (forked workers): the same rows, in
    the same day order, with the same dtypes."""
    settings = Settings(progress=False)
    labels = sample.table("labels").copy()
    days = ["2025-02-28", "2025-04-30", "2025-06-30", "2025-08-31", "2025-10-31"]
    labels["as_of"] = pd.to_datetime([days[k % len(days)] for k in range(len(labels))])
    dated = with_labels(sample, labels)

    def matrices(d: Dataset) -> dict[str, pd.DataFrame]:
        return model_matrices(d, settings, set(), Tokens(b"k" * 32))

    one = training_rows(dated, labels, matrices, 12)
    assert sum(len(rows) for rows in one.values()) == len(labels)
    for lanes in (2, 3):
        beside: dict[str, float] = {}
        shared = training_rows(dated, labels, matrices, 12, lanes, beside)
        assert list(shared) == list(one) and beside["cuts"] > 0  # the workers' time, reported
        for t in one:
            pd.testing.assert_frame_equal(shared[t], one[t])


def test_a_failing_cut_lane_fails_the_rows_and_leaves_no_worker(sample: Dataset) -> None:
    labels = sample.table("labels").copy()
    labels["as_of"] = pd.to_datetime(["2025-03-31" if k % 2 else "2025-07-31" for k in range(len(labels))])
    parent = os.getpid()

    def matrices(d: Dataset) -> dict[str, pd.DataFrame]:
        if os.getpid() == parent:  # this lane fails while the worker still builds its cut
            raise OSError(28, "No space left on device")
        return model_matrices(d, Settings(progress=False), set(), Tokens(b"k" * 32))

    before = child_pids()
    with pytest.raises(OSError, match="No space left"):
        training_rows(with_labels(sample, labels), labels, matrices, 12, 2)
    assert child_pids() <= before
