"""The person-matching model: Splink 5 over an embedded DuckDB, no server.

Records are first put in one comparable form (`prepare`): the 18-digit ID number (a 15-digit one
converted), whether it passes GB 11643-1999, its region (first 6 digits), the name in hanzi and
in toneless pinyin (pypinyin, so that 章/张 and a pinyin-only spelling meet), the surname's and the
given name's pinyin, birth date (from the record, else from the ID number), gender, phone and
address. The comparisons (`COMPARISONS`) and the
blocking rules that generate candidate pairs (`BLOCKING_RULES`) are documented in
docs/resolution.md. Parameters are estimated on the data itself: u by random sampling, m by
expectation maximisation in two sessions (blocked on birth date, then on phone), the prior from
the deterministic ID rule. A fitted model is a JSON dict (`model_json_`) that can be frozen and
reused (incremental runs, registry matching).

DuckDB's temporary files go to a private folder under the home (mode 0700), removed on `close`.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from graph.resolve.idnumber import SPACES, Checked, check

log = logging.getLogger("graph.resolve")

RECORD_COLUMNS = (
    "unique_id",
    "id18",
    "id_ok",
    "id_region",
    "name_hz",
    "name_py",
    "surname_py",
    "given_py",
    "birth_date",
    "birth_month",
    "gender",
    "phone",
    "address",
)
_CJK = re.compile(r"[\u3400-\u9fff]")

# EM iterations per session: the m of a level never seen among matches shrinks by orders of
# magnitude each iteration, and Splink refuses an m below 1e-300; 10 iterations converge here.
EM_ITERATIONS = 10

TF_COLUMNS = ("name_hz", "name_py", "phone", "address")  # columns with term-frequency adjustments

# Candidate pairs for the probabilistic stage (any one of them): docs/resolution.md, "Blocking".
# Each rule is one identifier or two agreeing fields. A rule on birth date and gender alone gave 12M
# pairs at 1M records (and grows with their square); these give about 2M in all, and every pair the
# earlier rules found at 0.5 or more is still found (a typo in the surname or in the given name
# still meets on the other half and the birth date). `id_region`: the ID number's first 6 digits (the
# issuing county), which a typo in the rest of the number keeps.
BLOCKING_RULES: tuple[tuple[str, ...], ...] = (
    ("id18",),
    ("phone",),
    ("name_py", "address"),
    ("birth_date", "surname_py"),
    ("birth_date", "given_py"),
    ("birth_date", "address"),
    ("birth_date", "id_region"),
    ("name_py", "birth_month"),
)


def load_libraries() -> None:
    """Import what a fit or a match loads on first use: pypinyin (its phrase dictionary), Splink
    and DuckDB, about a second. The composer calls this while its forked resolution worker runs,
    so that the workers of its later runs (a server's scheduled jobs) are forked with them loaded."""
    import duckdb  # noqa: F401
    import pypinyin  # noqa: F401
    import splink.internals.exceptions  # noqa: F401


def blocking_rules() -> list[Any]:
    """Splink's blocking rules for `BLOCKING_RULES`: each as equality on its columns."""
    from splink import block_on

    return [block_on(*cols) for cols in BLOCKING_RULES]


def _level(sql: str, label: str, *, null: bool = False, tf: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"sql_condition": sql, "label_for_charts": label}
    if null:
        out["is_null_level"] = True
    if tf:
        out["tf_adjustment_column"] = tf
        out["tf_adjustment_weight"] = 1.0
    return out


def _jw(col: str, at: float) -> str:
    return f"jaro_winkler_similarity({col}_l, {col}_r) >= {at}"


COMPARISONS: tuple[dict[str, Any], ...] = (
    {
        "output_column_name": "id18",
        "comparison_levels": [
            _level("id18_l IS NULL OR id18_r IS NULL", "null", null=True),
            _level("id18_l = id18_r", "exact"),
            # both pass the checksum and differ: two people, unless a typo passed it (1 in 11); those
            # with different check characters were issued apart and never link (persons.py)
            _level("id_ok_l = 1 AND id_ok_r = 1", "both valid, different"),
            _level("damerau_levenshtein(id18_l, id18_r) <= 2", "a mistyped digit or transposition"),
            _level("ELSE", "different"),
        ],
    },
    {
        "output_column_name": "name",
        "comparison_levels": [
            _level("name_py_l IS NULL OR name_py_r IS NULL", "null", null=True),
            _level("name_hz_l = name_hz_r", "same hanzi", tf="name_hz"),
            _level("name_py_l = name_py_r", "same pinyin (homophone or pinyin-only)", tf="name_py"),
            _level(_jw("name_py", 0.92), "pinyin Jaro-Winkler >= 0.92"),
            _level(_jw("name_py", 0.80), "pinyin Jaro-Winkler >= 0.80"),
            _level("ELSE", "different"),
        ],
    },
    {
        "output_column_name": "birth_date",
        "comparison_levels": [
            _level("birth_date_l IS NULL OR birth_date_r IS NULL", "null", null=True),
            _level("birth_date_l = birth_date_r", "exact"),
            _level("damerau_levenshtein(birth_date_l, birth_date_r) <= 1", "one digit or a transposition"),
            _level("ELSE", "different"),
        ],
    },
    {
        "output_column_name": "gender",
        "comparison_levels": [
            _level("gender_l IS NULL OR gender_r IS NULL", "null", null=True),
            _level("gender_l = gender_r", "exact"),
            _level("ELSE", "different"),
        ],
    },
    {
        "output_column_name": "phone",
        "comparison_levels": [
            _level("phone_l IS NULL OR phone_r IS NULL", "null", null=True),
            _level("phone_l = phone_r", "exact", tf="phone"),
            _level("ELSE", "different"),
        ],
    },
    {
        "output_column_name": "address",
        "comparison_levels": [
            _level("address_l IS NULL OR address_r IS NULL", "null", null=True),
            # exact after normalising (no spaces, lower case); no fuzzy level: house numbers of one
            # street are near each other as text and never the same person (EM drives that m to 0)
            _level("address_l = address_r", "exact", tf="address"),
            _level("ELSE", "different"),
        ],
    },
)


def _text(s: pd.Series) -> pd.Series:
    """Stripped text, None for missing or empty."""
    missing = s.isna().to_numpy()
    text = s if isinstance(s.dtype, pd.StringDtype) else s.astype("object").astype("str")  # text as read: no round trip
    t = text.str.strip().astype("object")
    return t.where(~missing & (t != "").to_numpy(), None)


def _removed(text: pd.Series, pattern: str) -> pd.Series:
    """Object text (None for missing) with every match of the RE2 `pattern` removed, in Arrow
    (no Python call per value)."""
    out = pc.replace_substring_regex(pa.array(text.to_numpy(dtype=object), type=pa.large_string()), pattern, "")
    return pd.Series(out.to_numpy(zero_copy_only=False), dtype="object")


def _pinyin(names: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series, pd.Series]:
    """(hanzi name or None, toneless pinyin without spaces, surname pinyin, given-name pinyin) per
    name; pypinyin is called once per distinct hanzi name, pinyin-only names are lower-cased."""
    from pypinyin import lazy_pinyin

    names = names.astype("object")
    uniq = pd.Series(names.dropna().unique(), dtype="object")
    has_cjk = uniq.str.contains(_CJK, regex=True)
    syllables = pd.Series([[]] * len(uniq), index=uniq.index, dtype="object")
    if has_cjk.any():
        hz = uniq[has_cjk].str.replace(r"[^\u3400-\u9fff]", "", regex=True)
        syllables[has_cjk] = [lazy_pinyin(n) for n in hz]
    latin = uniq[~has_cjk].str.lower().str.replace(r"[^a-z ]", "", regex=True).str.split()
    syllables[~has_cjk] = latin
    full = syllables.map(lambda parts: "".join(parts) or None)
    surname = syllables.map(lambda parts: parts[0] if parts else None)
    given = syllables.map(lambda parts: "".join(parts[1:]) or None)
    hanzi = uniq.where(has_cjk, None).str.replace(r"\s+", "", regex=True)
    lookup = pd.DataFrame(
        {"hz": hanzi.to_numpy(), "py": full.to_numpy(), "sur": surname.to_numpy(), "given": given.to_numpy()},
        index=uniq,
    )
    got = lookup.reindex(names.to_numpy())
    return (
        got["hz"].reset_index(drop=True),
        got["py"].reset_index(drop=True),
        got["sur"].reset_index(drop=True),
        got["given"].reset_index(drop=True),
    )


def prepare(
    ids: pd.Series,
    *,
    name: pd.Series | None = None,
    id_number: pd.Series | None = None,
    birth_date: pd.Series | None = None,
    gender: pd.Series | None = None,
    phone: pd.Series | None = None,
    address: pd.Series | None = None,
    checked: Checked | None = None,
) -> pd.DataFrame:
    """Records in the model's comparable form (RECORD_COLUMNS); absent fields are null.
    `checked`: the ID numbers already checked (with this `birth_date`), not checked again."""
    n = len(ids)

    def col(s: pd.Series | None) -> pd.Series:
        return pd.Series([None] * n, dtype="object") if s is None else s.reset_index(drop=True)

    if checked is None or len(checked.id18) != n:
        checked = check(col(id_number), birth_date=col(birth_date))
    id18 = pd.Series(checked.id18, dtype="object")
    id18 = id18.where(id18 != "", None)
    # the number's checks of its own (not agreement with the record): valid numbers of two records
    # that differ are two people
    own_ok = np.isin(checked.problem, ["", "birth_mismatch", "gender_mismatch"]) & (checked.id18 != "")
    region = id18.str.slice(0, 6) if id18.notna().any() else id18
    given_birth = pd.to_datetime(col(birth_date), errors="coerce")
    birth = given_birth.fillna(pd.Series(checked.birth))
    birth_text = birth.dt.strftime("%Y-%m-%d").astype("object").where(birth.notna(), None)
    gcode = pd.Series(_gender(col(gender)))
    gcode = gcode.where(gcode >= 0, pd.Series(checked.male).where(checked.male >= 0, -1))
    hz, py, sur, given = _pinyin(_text(col(name)))
    addr = _text(col(address))
    addr = _removed(addr, SPACES).str.lower() if addr.notna().any() else addr
    return pd.DataFrame(
        {
            "unique_id": ids.astype("str").reset_index(drop=True),
            "id18": id18,
            "id_ok": own_ok.astype(np.int8),
            "id_region": region,
            "name_hz": hz,
            "name_py": py,
            "surname_py": sur,
            "given_py": given,
            "birth_date": birth_text,
            "birth_month": birth_text.str.slice(0, 7) if birth_text.notna().any() else birth_text,
            "gender": gcode.map({1: "M", 0: "F"}).astype("object"),
            "phone": _removed(_text(col(phone)), r"[^\p{Nd}]") if phone is not None else col(None),
            "address": addr,
        }
    )[list(RECORD_COLUMNS)]


def _gender(s: pd.Series) -> np.ndarray:
    from graph.resolve.idnumber import gender_code

    return gender_code(s)


class PersonModel:
    """A Splink linkage model over prepared records (scikit-learn shaped: `fit`, then `predict`).

    `temp_dir`: a private folder for DuckDB's temporary files (created 0700, removed by `close`).
    `frozen`: a fitted model's JSON (`model_json_`) to reuse its parameters instead of fitting;
    `tf_tables`: frozen term-frequency lookups (`tf_tables_` of a fitted model) to use instead of
    the data's own (an incremental run and a full re-run then score every pair alike).
    `prior_from_data`: with `frozen`, take its m and u but estimate the prior on the records (as
    `fit` does; cheap), so that a stored model reused on grown data keeps a fitting prior.
    """

    def __init__(
        self,
        *,
        temp_dir: Path,
        threads: int = 2,
        memory_limit: str = "4GB",
        u_pairs: float = 1e6,
        em_pairs: float = 5e5,
        prior_recall: float = 0.8,
        seed: int = 7,
        frozen: dict[str, Any] | None = None,
        tf_tables: dict[str, pd.DataFrame] | None = None,
        prior_from_data: bool = False,
    ) -> None:
        self.temp_dir = temp_dir
        self.prior_from_data = prior_from_data
        self.threads = threads
        self.memory_limit = memory_limit
        self.u_pairs = u_pairs
        self.em_pairs = em_pairs
        self.prior_recall = prior_recall
        self.seed = seed
        self.frozen = frozen
        self.tf_tables = tf_tables
        self._con: Any = None
        self._api: Any = None

    # -- the embedded database -------------------------------------------------------------
    def _db(self) -> Any:
        if self._api is None:
            import duckdb
            from splink import DuckDBAPI

            self.temp_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.temp_dir.chmod(0o700)
            self._con = duckdb.connect(
                config={
                    "temp_directory": str(self.temp_dir),
                    "threads": self.threads,
                    "memory_limit": self.memory_limit,
                }
            )
            self._api = DuckDBAPI(self._con)
        return self._api

    def close(self) -> None:
        """Close the database and remove its temporary files."""
        if self._con is not None:
            self._con.close()
            self._con, self._api = None, None
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> PersonModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _settings(self) -> dict[str, Any]:
        from splink import SettingsCreator

        return SettingsCreator(
            link_type="dedupe_only",
            comparisons=[dict(c) for c in COMPARISONS],
            blocking_rules_to_generate_predictions=blocking_rules(),
            retain_matching_columns=False,
            retain_intermediate_calculation_columns=False,
            max_iterations=EM_ITERATIONS,
        ).create_settings_dict("duckdb")

    def _linker(self, records: pd.DataFrame, settings: dict[str, Any]) -> Any:
        from splink import Linker

        api = self._db()
        linker = Linker(api.register(records), settings, log_level=logging.ERROR)
        for col, table in (self.tf_tables or {}).items():
            linker.table_management.register_term_frequency_lookup(api.register(table), col)
        return linker

    def term_frequencies(self, records: pd.DataFrame) -> dict[str, pd.DataFrame]:
        """The term-frequency lookups of `records` (or the frozen ones), one table per TF column."""
        if self.tf_tables is not None:
            return self.tf_tables
        linker = self._linker(records, self._fitted())
        return {c: linker.table_management.compute_tf_table(c).as_pandas_dataframe() for c in TF_COLUMNS}

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, records: pd.DataFrame) -> PersonModel:
        """Estimate the parameters on `records` (or take the frozen ones)."""
        self.model_json_: dict[str, Any]
        if self.frozen is not None:
            self.model_json_ = self.frozen
            if self.prior_from_data:
                self.model_json_ = dict(self.frozen, probability_two_random_records_match=self.prior(records))
            return self
        from splink import block_on
        from splink.internals.exceptions import EMTrainingException

        settings = self._settings()
        settings["probability_two_random_records_match"] = self.prior(records)
        linker = self._linker(records, settings)
        linker.training.estimate_u_using_random_sampling(max_pairs=self.u_pairs, seed=self.seed)
        for cols in (("birth_date",), ("phone",)):
            try:
                linker.training.estimate_parameters_using_expectation_maximisation(
                    block_on(*cols), max_pairs=self.em_pairs, record_sample_proportion=1.0
                )
            except (ValueError, EMTrainingException) as exc:
                # too few pairs to train on (small data), or an m driven below 1e-300 by a level no
                # match ever takes: that session's levels keep their other estimates or defaults
                log.warning("EM session blocked on %s skipped: %s", "+".join(cols), str(exc).splitlines()[0])
        model = linker.misc.save_model_to_json()
        model["probability_two_random_records_match"] = settings["probability_two_random_records_match"]
        self.model_json_ = model
        return self

    def prior(self, records: pd.DataFrame) -> float:
        """The probability that two random records match: pairs sharing a valid ID number, over
        the deterministic rule's recall, over all pairs (at least one pair, so never zero)."""
        n = len(records)
        ok = records.loc[(records["id_ok"] == 1) & records["id18"].notna(), "id18"]
        # counted in Arrow (pandas hashes Python strings: 1.6 s at 1M); the sum is of whole
        # numbers, exact in any order
        sizes = pc.value_counts(pa.array(ok.to_numpy(dtype=object), pa.string())).field("counts")
        sizes = sizes.to_numpy().astype(np.float64)
        matches = max(float((sizes * (sizes - 1) / 2).sum()) / self.prior_recall, 1.0)
        return min(0.5, matches / max(n * (n - 1) / 2, 1.0))

    def _fitted(self) -> dict[str, Any]:
        model = getattr(self, "model_json_", None)
        if model is None:
            raise RuntimeError("PersonModel is not fitted: call fit() first")
        return model

    # -- scoring ----------------------------------------------------------------------------
    def predict(self, records: pd.DataFrame, threshold: float) -> pd.DataFrame:
        """Scored candidate pairs within `records` at or above `threshold`: left, right,
        match_probability (left < right)."""
        linker = self._linker(records, self._fitted())
        got = linker.inference.predict(threshold_match_probability=threshold).as_pandas_dataframe()
        return _pairs(got)

    def predict_within(self, records: pd.DataFrame, threshold: float) -> pd.DataFrame:
        """Like `predict`, with the frozen term frequencies (`tf_tables` is required)."""
        if self.tf_tables is None:
            raise RuntimeError("predict_within needs frozen term frequencies (tf_tables)")
        api = self._db()
        linker = self._linker(records, self._fitted())
        got = linker.inference.predict_within(api.register(records), threshold_match_probability=threshold)
        return _pairs(got.as_pandas_dataframe())

    def predict_between(self, left: pd.DataFrame, right: pd.DataFrame, threshold: float) -> pd.DataFrame:
        """Scored pairs between two sets of records (never within one), both in the prepared
        form; `left` ids and `right` ids must not overlap. Term frequencies: the frozen ones,
        else `left`'s."""
        api = self._db()
        linker = self._linker(left, self._fitted())
        if self.tf_tables is None:
            for col in TF_COLUMNS:
                linker.table_management.compute_tf_table(col)
        lt = api.register(left)
        rt = api.register(right)
        got = linker.inference.predict_between(lt, rt, threshold_match_probability=threshold).as_pandas_dataframe()
        return _pairs(got)


def _pairs(got: pd.DataFrame) -> pd.DataFrame:
    if got.empty:
        return pd.DataFrame(
            {"left": pd.Series([], dtype="str"), "right": pd.Series([], dtype="str"), "match_probability": []}
        )
    a, b = got["unique_id_l"].astype("str").to_numpy(), got["unique_id_r"].astype("str").to_numpy()
    left, right = np.minimum(a, b), np.maximum(a, b)
    out = pd.DataFrame({"left": left, "right": right, "match_probability": got["match_probability"].to_numpy()})
    return (
        out.sort_values("match_probability", ascending=False).drop_duplicates(["left", "right"]).reset_index(drop=True)
    )
