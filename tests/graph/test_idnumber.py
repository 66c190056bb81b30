"""GB 11643-1999 ID numbers: checksum, 15 -> 18 conversion, region, birth date and gender."""

from __future__ import annotations

import numpy as np
import pandas as pd

from graph.resolve.idnumber import Problem, check, gender_code, to18

VALID = "11010519491231002X"  # the standard's own example: a woman born 1949-12-31 in Beijing


def test_the_standard_example_is_valid_and_its_15_digit_form_converts_to_it():
    c = check(np.array([VALID, "110105491231002", VALID.lower()], dtype=object))
    assert list(c.problem) == ["", "", ""]
    assert list(c.id18) == [VALID] * 3
    assert list(c.male) == [0, 0, 0]
    assert list(pd.DatetimeIndex(c.birth).strftime("%Y-%m-%d")) == ["1949-12-31"] * 3
    assert list(to18(pd.Series(["110105491231002", None, "12"]))) == [VALID, "", ""]


def test_every_failed_check_is_named_and_counted():
    values = pd.Series(
        [
            "110105194912310021",  # wrong check character
            "99010519491231002X",  # no such province
            "110105194913310029",  # month 13
            "110105189912310020",  # born before 1900
            "1101051949123",  # too short
            "11010519491231002Y",  # a letter other than X
            "",  # missing: not checked
            None,
        ]
    )
    c = check(values)
    assert list(c.problem[:6]) == ["checksum", "region", "birth_date", "birth_date", "format", "format"]
    counts = c.counts()
    assert counts["checked"] == 6 and counts["invalid"] == 6 and counts["format"] == 2
    assert not c.present[6:].any()


def test_birth_date_and_gender_must_agree_with_the_record():
    ids = pd.Series([VALID, VALID, VALID])
    c = check(ids, birth_date=pd.Series(["1949-12-31", "1950-01-01", None]), gender=pd.Series(["F", "F", "男"]))
    assert list(c.problem) == ["", Problem.BIRTH_MISMATCH.value, Problem.GENDER_MISMATCH.value]


def test_a_future_birth_date_is_invalid():
    c = check(pd.Series(["110105209912310025"]), today=pd.Timestamp("2026-01-01"))
    assert c.problem[0] == "birth_date"


def test_gender_codes():
    assert list(gender_code(pd.Series(["M", "f", "女", "1", "2", "x", None]))) == [1, 0, 0, 1, 0, -1, -1]


def test_full_width_characters_and_unicode_spaces_are_read_as_ascii():
    """Exports typed with a Chinese input method hold full-width digits (１２３Ｘ) and ideographic
    spaces; they are the same number (a full-width digit used to crash the check)."""
    typed = ["１１０１０５１９４９１２３１００２Ｘ", "110105\u30001949 1231002x", "11010519491231002X\u2003"]
    got = check(typed)
    assert list(got.id18) == ["11010519491231002X"] * 3
    assert list(got.problem) == ["", "", ""]
    assert list(check(["11010519491231002٣"]).problem) == ["format"]  # other scripts' digits are not ASCII
