"""GB 11643-1999 citizen identity numbers, checked on whole columns at once.

An 18-digit number is 6 digits of region (address code), 8 of birth date (YYYYMMDD), 3 of
sequence (odd for men, even for women) and a check character (ISO 7064 MOD 11-2, 0-9 or X).
A 15-digit number (issued before 1999) is the same without the century (19) and without the
check character; `to18` turns it into its 18-digit equivalent. The region check covers the
province part of the address code (the first two digits: the GB/T 2260 provinces, plus 71
Taiwan, 81 Hong Kong, 82 Macao and 83 for residence permits); county codes change every year
and are not checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
CHECK_CHARS = np.array(list("10X98765432"))
PROVINCES = frozenset(
    [11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54]
    + [61, 62, 63, 64, 65, 71, 81, 82, 83]
)
MIN_BIRTH_YEAR = 1900


class Problem(str, Enum):
    """Why a number fails GB 11643-1999 (the first failed check, in this order)."""

    FORMAT = "format"  # not 15 digits, or 17 digits and a digit or X
    REGION = "region"  # the province part of the address code does not exist
    BIRTH_DATE = "birth_date"  # the birth part is no calendar date, before 1900 or in the future
    CHECKSUM = "checksum"  # the 18th character is not the MOD 11-2 check of the first 17
    BIRTH_MISMATCH = "birth_mismatch"  # the number's birth date is not the record's birth_date
    GENDER_MISMATCH = "gender_mismatch"  # the sequence parity is not the record's gender


PROBLEMS: tuple[str, ...] = tuple(p.value for p in Problem)


@dataclass(frozen=True)
class Checked:
    """The outcome for each value of a column (missing values are neither valid nor invalid)."""

    present: np.ndarray  # bool: a non-empty value
    problem: np.ndarray  # object: '' when valid (or missing), else a Problem value
    id18: np.ndarray  # object: the 18-digit form of a well-formed number, else ''
    birth: np.ndarray  # datetime64[ns]: the number's birth date (NaT when unreadable)
    male: np.ndarray  # int8: 1 male, 0 female, -1 unknown

    @property
    def invalid(self) -> np.ndarray:
        return self.present & (self.problem != "")

    def counts(self) -> dict[str, int]:
        """How many values were checked, and how many failed each check."""
        out = {"checked": int(self.present.sum()), "invalid": int(self.invalid.sum())}
        for p in PROBLEMS:
            out[p] = int((self.problem == p).sum())
        return out


# Python's \s, for RE2 (whose \s is ASCII only): ideographic and other Unicode spaces too
SPACES = r"[\t\n\x0b\x0c\r\x1c-\x1f\x85\p{Z}]+"


def _text(values: pd.Series | np.ndarray) -> pa.Array:
    s = pd.Series(values, dtype="object")
    return pa.array(s.astype("str").where(s.notna(), "").to_numpy(dtype=object), type=pa.large_string())


def normalise(values: pd.Series | np.ndarray) -> np.ndarray:
    """Upper-case text without spaces (a lower-case x check character is read as X), full-width
    characters as ASCII; '' for missing."""
    return _normalised(values).to_numpy(zero_copy_only=False).astype(object)


def _normalised(values: pd.Series | np.ndarray) -> pa.Array:
    # NFKC first: full-width digits and letters (１２３Ｘ, common in exports typed with a Chinese
    # input method) become ASCII
    return pc.utf8_upper(pc.replace_substring_regex(pc.utf8_normalize(_text(values), "NFKC"), SPACES, ""))


def _digits(text: np.ndarray, width: int) -> np.ndarray:
    """An (n, width) int matrix of the characters' digit values (X -> 10, others -> -1)."""
    if len(text) == 0:
        return np.zeros((0, width), dtype=np.int64)
    b = np.array(text.tolist(), dtype=f"S{width}").view(np.uint8).reshape(len(text), width).astype(np.int64)
    d = b - ord("0")
    d[(d < 0) | (d > 9)] = -1
    d[b == ord("X")] = 10
    return d


def check_chars(first17: np.ndarray) -> np.ndarray:
    """The MOD 11-2 check character of each row of an (n, 17) digit matrix."""
    return CHECK_CHARS[(first17 @ WEIGHTS) % 11]


def to18(values: pd.Series | np.ndarray) -> np.ndarray:
    """The 18-digit form of each number: an 18-character value as given (upper case), a 15-digit
    one with 19 inserted and its check character appended, '' for anything else."""
    return check(values).id18


def check(
    values: pd.Series | np.ndarray,
    *,
    birth_date: pd.Series | np.ndarray | None = None,
    gender: pd.Series | np.ndarray | None = None,
    today: pd.Timestamp | None = None,
) -> Checked:
    """Check every number; with `birth_date` / `gender` (M/F, 男/女) also their consistency."""
    arrow = _normalised(values)  # Arrow's text kernels: no Python call per value
    text = arrow.to_numpy(zero_copy_only=False).astype(object)
    n = len(text)
    present = pc.utf8_length(arrow).to_numpy() > 0
    problem = np.full(n, "", dtype=object)
    id18 = np.full(n, "", dtype=object)
    is15 = pc.match_substring_regex(arrow, r"^[0-9]{15}$").to_numpy(zero_copy_only=False)
    is18 = pc.match_substring_regex(arrow, r"^[0-9]{17}[0-9X]$").to_numpy(zero_copy_only=False)
    d = np.full((n, 18), -1, dtype=np.int64)
    if is18.any():
        d[is18] = _digits(text[is18], 18)
    if is15.any():
        d15 = _digits(text[is15], 15)
        century = np.tile(np.array([1, 9]), (len(d15), 1))
        d[is15] = np.column_stack([d15[:, :6], century, d15[:, 6:], np.zeros((len(d15), 1), dtype=np.int64)])
    well = is15 | is18
    problem[present & ~well] = Problem.FORMAT.value
    expected = np.full(n, "", dtype=object)
    if well.any():
        expected[well] = check_chars(d[well, :17])
    # the 18-digit form: a 15-digit number gets its computed check character
    digits17 = np.ascontiguousarray(np.where(well[:, None], d[:, :17], 0) + ord("0"), dtype=np.uint8)
    body = digits17.view("S17").ravel().astype("U17").astype(object)
    id18[well & is15] = body[well & is15] + expected[well & is15]
    id18[well & is18] = text[well & is18]
    province = d[:, 0] * 10 + d[:, 1]
    region_ok = np.isin(province, list(PROVINCES))
    flag = well & (problem == "") & ~region_ok
    problem[flag] = Problem.REGION.value
    year = d[:, 6:10] @ np.array([1000, 100, 10, 1])
    month = d[:, 10] * 10 + d[:, 11]
    day = d[:, 12] * 10 + d[:, 13]
    parts = {"year": np.where(well, year, 2000), "month": np.where(well, month, 1), "day": np.where(well, day, 1)}
    born = pd.to_datetime(pd.DataFrame(parts), errors="coerce").to_numpy(dtype="datetime64[ns]")
    born[~well] = np.datetime64("NaT")
    limit = (today or pd.Timestamp.now()).to_datetime64()
    date_ok = ~np.isnat(born) & (year >= MIN_BIRTH_YEAR) & (born <= limit)
    flag = well & (problem == "") & ~date_ok
    problem[flag] = Problem.BIRTH_DATE.value
    born[~date_ok] = np.datetime64("NaT")
    given_check = np.where(d[:, 17] == 10, "X", d[:, 17].astype(str))
    flag = well & is18 & (problem == "") & (given_check != expected)
    problem[flag] = Problem.CHECKSUM.value
    male = np.where(well, d[:, 16] % 2, -1).astype(np.int8)
    if birth_date is not None:
        given = pd.to_datetime(pd.Series(birth_date), errors="coerce").to_numpy(dtype="datetime64[ns]")
        flag = (problem == "") & present & ~np.isnat(given) & ~np.isnat(born) & (given != born)
        problem[flag] = Problem.BIRTH_MISMATCH.value
    if gender is not None:
        g = gender_code(gender)
        flag = (problem == "") & present & (g >= 0) & (male >= 0) & (g != male)
        problem[flag] = Problem.GENDER_MISMATCH.value
    return Checked(present=present, problem=problem, id18=id18, birth=born, male=male)


_GENDER = {"M": 1, "MALE": 1, "男": 1, "1": 1, "F": 0, "FEMALE": 0, "女": 0, "2": 0, "0": 0}


def gender_code(values: pd.Series | np.ndarray) -> np.ndarray:
    """1 male, 0 female, -1 unknown (M/F, male/female, 男/女, GB/T 2261 1/2)."""
    codes, uniques = pd.factorize(pd.Series(values, dtype="object"), use_na_sentinel=True)
    # each distinct spelling read once (a million rows hold a handful of them)
    words = pd.Series(uniques, dtype="object").astype("str").str.strip().str.upper()
    read = np.append(words.map(_GENDER).fillna(-1).to_numpy(dtype=np.int8), np.int8(-1))
    return read[codes]  # a missing value (code -1) takes the appended -1
