"""Duplicate person records and the death and custody registries (一数一源, docs/resolution.md).

Planted after every other table is written, from the same rng, so the other tables' rows are
exactly what they would be without them; new rows are appended to persons.csv, benefits.csv and
contributions.csv, and deaths.csv and custody.csv are new files.

- duplicates: ~`share` of the humans get a second person record (another source system): the
  name mistyped in some, the ID number in its 15-digit form or with two digits transposed in
  some, the phone changed in some, the address or birth date left empty in a few. Some of those
  draw a second pension (pattern duplicate_pension) or are enrolled a second time by another
  employer (duplicate_enrolment);
- deaths: every recorded death, plus pensioners dead only in the registry whose pension goes on
  (pension_after_registry_death), plus deaths of people not in the data; names mistyped in 10%,
  some names empty, some ID numbers in 15 digits or missing;
- custody: terms of some persons, pensioners among them paid during the term
  (pension_in_custody), plus people not in the data.

Truth: truth/person_clusters.csv (person_id, human_id), truth/registry_matches.csv (table,
registry_id, person_id of the human's first record), and the patterns appended to truth/truth.csv.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from synth.params import YEAR

DUPLICATE_PATTERNS = ("duplicate_pension", "duplicate_enrolment", "pension_after_registry_death", "pension_in_custody")
NAME_TYPO_SHARE = 0.3  # duplicate records with a mistyped name
REGISTRY_TYPO_SHARE = 0.1  # registry rows with a mistyped name
ID15_SHARE = 0.3  # duplicate records with the 15-digit form
TRANSPOSED_SHARE = 0.15  # duplicate records with two ID digits transposed
PHONE_CHANGED_SHARE = 0.5
SECOND_PENSION_SHARE = 0.5  # duplicates of pensioners drawing a second pension
SECOND_ENROLMENT_SHARE = 0.4  # duplicates of contributors enrolled again elsewhere
REGISTRY_DEATH_SHARE = 0.006  # alive pensioners dead only in the registry, pension continuing
CUSTODY_SHARE = 0.004  # persons with a custody term
OUTSIDERS_SHARE = 0.2  # registry rows for people not in the data (relative to the planted rows)


def _in(values: pd.Series | np.ndarray, pool: pd.Series | np.ndarray) -> np.ndarray:
    """Whether each value is in `pool` (hash lookups: np.isin on text is quadratic)."""
    index = pd.Index(pd.unique(np.asarray(pool, dtype=object)))
    return np.asarray(index.get_indexer(np.asarray(values, dtype=object)) >= 0)


def _read(out: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(out / f"{name}.csv", dtype=str, keep_default_na=False, na_values=[""])


def _typo(rng: np.random.Generator, names: pd.Series) -> pd.Series:
    """One letter of each name replaced by another (pinyin-looking typos), keeping the first."""
    s = names.fillna("").to_numpy(dtype=object)
    lengths = np.array([len(x) for x in s])
    pos = 1 + (rng.random(len(s)) * np.maximum(lengths - 1, 1)).astype(np.int64)
    letters = np.array(list("aeiounghz"))[rng.integers(0, 9, len(s))]
    pos = np.array([p - 1 if len(x) > p and x[p] == " " else p for x, p in zip(s, pos, strict=True)])
    out = [x[:p] + c + x[p + 1 :] if len(x) > 1 else x for x, p, c in zip(s, pos, letters, strict=True)]
    return pd.Series(out, index=names.index, dtype=object)


def to15(ids: pd.Series) -> pd.Series:
    """The 15-digit form of 18-digit numbers of the 1900s (others unchanged)."""
    s = ids.astype(str)
    ok = (s.str.len() == 18) & (s.str.slice(6, 8) == "19")
    return s.where(~ok, s.str.slice(0, 6) + s.str.slice(8, 17))


def _transpose(rng: np.random.Generator, ids: pd.Series) -> pd.Series:
    """Two neighbouring digits of the sequence part swapped (the checksum then fails)."""
    s = ids.astype(str)
    i = 14 + rng.integers(0, 2, len(s))
    return pd.Series(
        [x[:k] + x[k + 1] + x[k] + x[k + 2 :] if len(x) == 18 else x for x, k in zip(s, i, strict=True)],
        index=ids.index,
        dtype=object,
    )


def _new_ids(prefix: str, start: int, n: int, width: int) -> np.ndarray:
    return np.array([f"{prefix}{i:0{width}d}" for i in range(start, start + n)], dtype=object)


def _fake_ids(rng: np.random.Generator, n: int) -> pd.Series:
    """Valid-looking 18-digit numbers of people not in the data (region 5x: outside the data's)."""
    from graph.resolve.idnumber import check_chars

    region = 510100 + 100 * rng.integers(0, 20, n)
    born = pd.Timestamp("1930-01-01") + pd.to_timedelta(rng.integers(0, 25_000, n), unit="D")
    seq = rng.integers(0, 1000, n)
    first = (
        pd.Series(region.astype(str))
        + born.strftime("%Y%m%d").to_series(index=range(n))
        + pd.Series(seq).map("{:03d}".format)
    )
    d = np.array([list(map(int, x)) for x in first], dtype=np.int64).reshape(n, 17)
    return first + pd.Series(check_chars(d) if n else [], dtype=object)


def plant(out: Path, rng: np.random.Generator, share: float = 0.03) -> dict[str, int]:
    """Plant duplicates and registries into the dataset folder `out`; return the new row counts."""
    persons, benefits, contributions = _read(out, "persons"), _read(out, "benefits"), _read(out, "contributions")
    n = len(persons)
    width = len(persons["person_id"].iloc[0]) - 1
    human = persons["person_id"].str.replace("P", "H", n=1)
    # --- duplicate records ---------------------------------------------------------------------
    k = max(1, round(share * n))
    src = np.sort(rng.choice(n, size=k, replace=False))
    dup = persons.iloc[src].reset_index(drop=True).copy()
    dup["person_id"] = _new_ids("P", n + 1, k, width)
    typo = rng.random(k) < NAME_TYPO_SHARE
    dup.loc[typo, "name"] = _typo(rng, dup.loc[typo, "name"])
    form = rng.random(k)
    id15 = form < ID15_SHARE
    transposed = (form >= ID15_SHARE) & (form < ID15_SHARE + TRANSPOSED_SHARE)
    dup.loc[id15, "id_number"] = to15(dup.loc[id15, "id_number"])
    dup.loc[transposed, "id_number"] = _transpose(rng, dup.loc[transposed, "id_number"])
    changed = rng.random(k) < PHONE_CHANGED_SHARE
    dup.loc[changed, "phone"] = (13_000_000_000 + rng.integers(0, 6_999_999_999, int(changed.sum()))).astype(str)
    dup.loc[rng.random(k) < 0.1, "address"] = None
    dup.loc[rng.random(k) < 0.05, "birth_date"] = None
    dup.loc[rng.random(k) < 0.5, "bank_account"] = None
    truth: list[tuple[str, str]] = []
    # second pensions and second enrolments under the duplicate record
    src_ids = persons["person_id"].to_numpy()[src]
    pens = benefits[benefits["benefit_type"] == "pension"]
    pensioner = _in(src_ids, pens["person_id"]) & persons["death_date"].iloc[src].isna().to_numpy()
    second = pensioner & (rng.random(k) < SECOND_PENSION_SHARE)
    rows = pens[_in(pens["person_id"], src_ids[second])]
    to_dup = dict(zip(src_ids, dup["person_id"], strict=True))
    new_benefits = [rows.assign(person_id=rows["person_id"].map(to_dup))]
    truth += [(p, "duplicate_pension") for p in src_ids[second]]
    contributors = _in(src_ids, contributions["person_id"])
    again = contributors & ~second & (rng.random(k) < SECOND_ENROLMENT_SHARE)
    employers = contributions["employer_id"].unique()
    c = contributions[_in(contributions["person_id"], src_ids[again])].copy()
    c = c.sort_values(["person_id", "month"]).groupby("person_id").head(3)
    other = employers[rng.integers(0, len(employers), len(c))]
    c = c.assign(person_id=c["person_id"].map(to_dup), employer_id=other)
    c = c.drop_duplicates(["employer_id", "person_id", "month"])
    truth += [(p, "duplicate_enrolment") for p in src_ids[again]]
    # --- deaths registry -------------------------------------------------------------------------
    dead = persons[persons["death_date"].notna()]
    alive_pensioners = np.sort(pens["person_id"].unique()[~_in(pens["person_id"].unique(), dead["person_id"])])
    m = min(len(alive_pensioners), max(1, round(REGISTRY_DEATH_SHARE * n)))
    hidden = np.sort(rng.choice(alive_pensioners, size=m, replace=False))
    hidden_rows = persons[_in(persons["person_id"], hidden)]
    before = pd.Timestamp(f"{YEAR}-01-01") + pd.to_timedelta(rng.integers(0, 150, m), unit="D")
    truth += [(p, "pension_after_registry_death") for p in hidden_rows["person_id"]]
    deaths = pd.concat(
        [
            dead[["person_id", "name", "id_number", "birth_date", "death_date"]],
            hidden_rows[["person_id", "name", "id_number", "birth_date"]].assign(
                death_date=before.strftime("%Y-%m-%d").to_numpy()
            ),
        ],
        ignore_index=True,
    )
    deaths["source"] = np.where(rng.random(len(deaths)) < 0.7, "civil_affairs", "cremation")
    deaths = _registry_noise(rng, deaths)
    outsiders = _outsiders(rng, max(1, round(OUTSIDERS_SHARE * len(deaths))))
    deaths = pd.concat(
        [
            deaths,
            outsiders.assign(
                death_date=(pd.Timestamp(f"{YEAR}-01-01") + pd.to_timedelta(rng.integers(0, 365, len(outsiders)), "D"))
                .strftime("%Y-%m-%d")
                .to_numpy(),
                source="civil_affairs",
            ),
        ],
        ignore_index=True,
    )
    deaths["registry_id"] = _new_ids("MZ", 1, len(deaths), 6)
    # --- custody registry ------------------------------------------------------------------------
    alive = persons[persons["death_date"].isna() & ~_in(persons["person_id"], hidden)]
    q = max(2, round(CUSTODY_SHARE * n))
    # half of the terms are pensioners' (paid during the term unless stopped), half anyone's
    paid = _in(alive["person_id"], pens["person_id"])
    pick_p = rng.choice(np.flatnonzero(paid), size=min(q // 2, int(paid.sum())), replace=False)
    pick_o = rng.choice(np.flatnonzero(~paid), size=min(q - len(pick_p), int((~paid).sum())), replace=False)
    jailed = alive.iloc[np.sort(np.r_[pick_p, pick_o])]
    start = pd.Timestamp(f"{YEAR - 1}-06-01") + pd.to_timedelta(rng.integers(0, 360, len(jailed)), unit="D")
    ends = start + pd.to_timedelta(rng.integers(600, 1500, len(jailed)), unit="D")  # past the year
    custody = jailed[["person_id", "name", "id_number", "birth_date"]].assign(
        start_date=start.strftime("%Y-%m-%d").to_numpy(),
        end_date=np.where(rng.random(len(jailed)) < 0.3, None, ends.strftime("%Y-%m-%d").to_numpy()),
    )
    paid_inside = set(pens["person_id"]) & set(jailed["person_id"])
    truth += [(p, "pension_in_custody") for p in sorted(paid_inside)]
    custody = _registry_noise(rng, custody.reset_index(drop=True))
    o = _outsiders(rng, max(1, round(OUTSIDERS_SHARE * len(custody))))
    o_start = pd.Timestamp(f"{YEAR - 1}-01-01") + pd.to_timedelta(rng.integers(0, 700, len(o)), unit="D")
    custody = pd.concat([custody, o.assign(start_date=o_start.strftime("%Y-%m-%d").to_numpy(), end_date=None)])
    custody["registry_id"] = _new_ids("GA", 1, len(custody), 6)
    # --- write -----------------------------------------------------------------------------------
    # appended: the rows already written stay byte for byte
    dup[persons.columns].to_csv(out / "persons.csv", index=False, header=False, mode="a")
    new_benefits[0][benefits.columns].to_csv(out / "benefits.csv", index=False, header=False, mode="a")
    c[contributions.columns].to_csv(out / "contributions.csv", index=False, header=False, mode="a")
    all_persons = pd.concat([persons, dup], ignore_index=True)
    reg_cols = ["registry_id", "name", "id_number", "birth_date"]
    deaths[[*reg_cols, "death_date", "source"]].to_csv(out / "deaths.csv", index=False)
    custody[[*reg_cols, "start_date", "end_date"]].to_csv(out / "custody.csv", index=False)
    clusters = pd.DataFrame(
        {
            "person_id": all_persons["person_id"],
            "human_id": np.r_[human.to_numpy(dtype=object), human.to_numpy(dtype=object)[src]],
        }
    )
    clusters.to_csv(out / "truth" / "person_clusters.csv", index=False)
    matches = pd.concat(
        [
            deaths.loc[deaths["person_id"].notna(), ["registry_id", "person_id"]].assign(table="deaths"),
            custody.loc[custody["person_id"].notna(), ["registry_id", "person_id"]].assign(table="custody"),
        ]
    )
    matches[["table", "registry_id", "person_id"]].to_csv(out / "truth" / "registry_matches.csv", index=False)
    planted = pd.DataFrame(truth, columns=["entity_id", "pattern"]).assign(entity_type="person", ring_id="")
    truth_csv = pd.read_csv(out / "truth" / "truth.csv", dtype=str, keep_default_na=False)
    pd.concat([truth_csv, planted[truth_csv.columns]], ignore_index=True).to_csv(
        out / "truth" / "truth.csv", index=False
    )
    return {
        "persons": len(all_persons),
        "benefits": len(benefits) + len(new_benefits[0]),
        "contributions": len(contributions) + len(c),
        "deaths": len(deaths),
        "custody": len(custody),
    }


def _registry_noise(rng: np.random.Generator, df: pd.DataFrame) -> pd.DataFrame:
    """Registry rows as another department keeps them: some names mistyped, a few empty, some ID
    numbers in the 15-digit form, a few missing."""
    df = df.reset_index(drop=True).copy()
    r = rng.random(len(df))
    typo = r < REGISTRY_TYPO_SHARE
    df.loc[typo, "name"] = _typo(rng, df.loc[typo, "name"])
    df.loc[(r >= REGISTRY_TYPO_SHARE) & (r < REGISTRY_TYPO_SHARE + 0.02), "name"] = None
    f = rng.random(len(df))
    df.loc[f < 0.1, "id_number"] = to15(df.loc[f < 0.1, "id_number"])
    df.loc[(f >= 0.1) & (f < 0.13), "id_number"] = None
    return df


def _outsiders(rng: np.random.Generator, n: int) -> pd.DataFrame:
    from synth.params import GIVEN_FIRST, GIVEN_SECOND, SURNAMES

    ids = _fake_ids(rng, n)
    name = (
        pd.Series(np.array(SURNAMES)[rng.integers(0, len(SURNAMES), n)])
        + " "
        + pd.Series(np.array(GIVEN_FIRST)[rng.integers(0, len(GIVEN_FIRST), n)])
        + pd.Series(np.array(GIVEN_SECOND)[rng.integers(0, len(GIVEN_SECOND), n)]).str.lower()
    )
    birth = pd.to_datetime(ids.str.slice(6, 14), format="%Y%m%d").dt.strftime("%Y-%m-%d")
    return pd.DataFrame({"person_id": None, "name": name, "id_number": ids, "birth_date": birth})
