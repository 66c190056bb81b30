"""Writing a `World` as the dataset folder: every table of the input contract as UTF-8 CSV, plus truth/truth.csv.

Entity indices become ids (P0000001, E00001, ...), day offsets dates, codes text. Names, id numbers,
employer phones and bank accounts are drawn here, after everything else, from the same rng.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import yaml

from graph.resolve.idnumber import check_chars
from synth.arrays import money, unique_codes
from synth.params import (
    AS_OF,
    BENEFIT_TYPES,
    DAYS_IN_YEAR,
    DIAGNOSES,
    EPOCH_OFFSET,
    GIVEN_FIRST,
    GIVEN_SECOND,
    INDUSTRIES,
    INPATIENT,
    LEVELS,
    N_DRUGS,
    ONGOING,
    STREETS,
    SURNAMES,
    YEAR,
)
from synth.supervision import write_supervision
from synth.world import World


def write_dataset(w: World, out: Path, labels: dict[str, np.ndarray], truth: pd.DataFrame) -> dict[str, int]:
    """Write the dataset folder `out` from `w`, its `labels` and `truth` (labels.py); return rows per table."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "truth").mkdir(exist_ok=True)
    ids = {
        "person": _ids("P", w.n, 7),
        "employer": _ids("E", w.n_employers, 5),
        "clinic": _ids("C", w.n_clinics, 4),
        "pharmacy": _ids("H", w.n_pharmacies, 4),
        "agency": _ids("A", w.n_agencies, 3),
    }
    region_names = [f"R{r + 1:02d}" for r in range(w.n_regions)]
    counts = {
        "persons": _write_persons(w, out, ids, region_names),
        "employers": _write_employers(w, out, ids, region_names),
    }
    counts |= _write_facilities(w, out, ids, region_names)
    counts |= _write_employment(w, out, ids)
    counts |= _write_medical(w, out, ids)
    counts["agency_links"] = _write_agency_links(w, out, ids)
    n_labels = _write_labels(out, ids, labels)
    if n_labels is not None:
        counts["labels"] = n_labels
    counts["truth"] = _write_truth(out, ids, truth)
    _write_dictionary(out)
    counts |= write_supervision(w, out)  # its own generator: the files above stay as they were
    return counts


# The generator's extra (non-contract) columns, for the data dictionary (graph/dictionary.py).
EXTRA_COLUMNS = (
    # a health attribute: kept out of models and reasons
    {
        "column": "chronic",
        "label_en": "Chronic condition",
        "label_zh": "慢性病",
        "unit": "flag",
        "level": "sensitive_personal",
    },
    # clinics' and pharmacies' street address (a person's address is a contract column, personal)
    {"column": "address", "label_en": "Address", "label_zh": "地址", "unit": "category", "level": "public"},
    {
        "column": "staff_headcount",
        "label_en": "Declared staff headcount",
        "label_zh": "申报职工人数",
        "unit": "count",
        "level": "internal",
    },
    {
        "column": "insured_headcount",
        "label_en": "Declared insured headcount",
        "label_zh": "申报参保人数",
        "unit": "count",
        "level": "internal",
    },
)


def _write_dictionary(out: Path) -> None:
    """columns.yaml: labels and units of the extra columns, so reasons never show raw names."""
    header = "# Data dictionary of the extra columns (labels and units for reasons; see docs/reasons.md).\n"
    body = yaml.safe_dump({"columns": list(EXTRA_COLUMNS)}, allow_unicode=True, sort_keys=False)
    (out / "columns.yaml").write_text(header + body, encoding="utf-8")


def _write_persons(w: World, out: Path, ids: dict[str, pa.Array], region_names: list[str]) -> int:
    rng, n = w.rng, w.n
    name = _join(
        _text(SURNAMES, rng.integers(0, len(SURNAMES), n)),
        " ",
        _text(GIVEN_FIRST, rng.integers(0, len(GIVEN_FIRST), n)),
        _text(GIVEN_SECOND, rng.integers(0, len(GIVEN_SECOND), n)),
    )
    birth = _dates(w.birth)
    order = np.lexsort((np.arange(n), w.birth, w.region))
    rank = np.empty(n, dtype=np.int64)
    key = w.region[order] * 10**6 + w.birth[order]
    starts = np.r_[0, np.flatnonzero(np.diff(key)) + 1]
    sizes = np.diff(np.r_[starts, n])
    group_offset = rng.integers(0, 9000, len(starts))  # sequence numbers look random
    rank[order] = np.arange(n) - np.repeat(starts, sizes) + np.repeat(group_offset, sizes)
    id_number = gb11643(110100 + 100 * w.region, birth, rank, w.gender)
    hh = w.household
    address = _join(
        _text(region_names, w.hh_region[hh]), " ", _text(STREETS, hh % len(STREETS)), " Rd No.", _str(hh + 1)
    )
    dead = w.death < DAYS_IN_YEAR
    return _write_csv(
        out / "persons.csv",
        {
            "person_id": ids["person"],
            "name": name,
            "id_number": id_number,
            "gender": _text(("F", "M"), w.gender),
            "birth_date": birth,
            "region": _text(region_names, w.region),
            "phone": _str(w.phone),
            "address": address,
            "bank_account": _str(w.bank),
            "death_date": _dates(w.death, dead),
            "chronic": w.chronic.astype(np.int64),
        },
    )


def _write_employers(w: World, out: Path, ids: dict[str, pa.Array], region_names: list[str]) -> int:
    rng = w.rng
    n_e = w.n_employers
    contact = w.e_shared_contact
    e_phone = unique_codes(rng, n_e, 1_000_000_000, 9_999_999_999)[contact]
    return _write_csv(
        out / "employers.csv",
        {
            "employer_id": ids["employer"],
            "name": _join(
                _text(STREETS, rng.integers(0, len(STREETS), n_e)),
                " ",
                _text(INDUSTRIES, w.e_industry),
                " Co ",
                _str(np.arange(1, n_e + 1)),
            ),
            "credit_code": _join("91", pc.utf8_lpad(_str(np.arange(1, n_e + 1)), 16, "0")),
            "industry": _text(INDUSTRIES, w.e_industry),
            "region": _text(region_names, w.e_region),
            "registered_date": _dates(w.e_registered),
            "phone": _join("0", _str(e_phone)),
            "address": _join(_text(region_names, w.e_region), " Business Park Unit ", _str(contact + 1)),
            "bank_account": _str(unique_codes(rng, n_e, 6_228_000_000_000_000, 6_228_999_999_999_999)),
            "staff_headcount": w.e_staff,
            "insured_headcount": w.e_insured,
        },
    )


def _write_facilities(w: World, out: Path, ids: dict[str, pa.Array], region_names: list[str]) -> dict[str, int]:
    """clinics, pharmacies and agencies."""
    counts: dict[str, int] = {}
    level_names = {0: "Clinic", 1: "Hospital", 2: "General Hospital"}
    counts["clinics"] = _write_csv(
        out / "clinics.csv",
        {
            "clinic_id": ids["clinic"],
            "name": _join(
                _text(STREETS, np.arange(w.n_clinics) % len(STREETS)),
                " ",
                _text(list(level_names.values()), w.c_level),
                " ",
                _str(np.arange(1, w.n_clinics + 1)),
            ),
            "level": _text(LEVELS, w.c_level),
            "region": _text(region_names, w.c_region),
            "beds": w.c_beds.astype(np.int64),
            "address": _join(_text(region_names, w.c_region), " Medical Street ", _str(w.c_address + 1)),
        },
    )
    counts["pharmacies"] = _write_csv(
        out / "pharmacies.csv",
        {
            "pharmacy_id": ids["pharmacy"],
            "name": _join(
                _text(STREETS, np.arange(w.n_pharmacies) % len(STREETS)),
                " Pharmacy ",
                _str(np.arange(1, w.n_pharmacies + 1)),
            ),
            "region": _text(region_names, w.h_region),
            "address": _join(_text(region_names, w.h_region), " Medical Street ", _str(w.h_address + 1)),
        },
    )
    counts["agencies"] = _write_csv(
        out / "agencies.csv",
        {
            "agency_id": ids["agency"],
            "name": _join(
                _text(STREETS, np.arange(w.n_agencies) % len(STREETS)),
                " Staffing ",
                _str(np.arange(1, w.n_agencies + 1)),
            ),
            "license_no": _join("HR", pc.utf8_lpad(_str(np.arange(1, w.n_agencies + 1)), 8, "0")),
            "region": _text(region_names, w.a_region),
        },
    )
    return counts


def _write_employment(w: World, out: Path, ids: dict[str, pa.Array]) -> dict[str, int]:
    """employment, contributions and benefits."""
    pid, eid, aid = ids["person"], ids["employer"], ids["agency"]
    counts: dict[str, int] = {}
    s = w.spells.concat()
    o = np.lexsort((s["start"], s["employer"], s["person"]))
    s = {k: v[o] for k, v in s.items()}
    counts["employment"] = _write_csv(
        out / "employment.csv",
        {
            "person_id": _take(pid, s["person"]),
            "employer_id": _take(eid, s["employer"]),
            "start_date": _dates(s["start"]),
            "end_date": _dates(s["end"], s["end"] < ONGOING),
            "monthly_wage": s["wage"],
            "agency_id": _take(aid, s["agency"]),
        },
    )
    c = w.contrib
    o = np.lexsort((c["month"], c["person"], c["employer"]))
    months = [f"{YEAR}-{k + 1:02d}" for k in range(12)]
    counts["contributions"] = _write_csv(
        out / "contributions.csv",
        {
            "employer_id": _take(eid, c["employer"][o]),
            "person_id": _take(pid, c["person"][o]),
            "month": _text(months, c["month"][o]),
            "base": c["base"][o],
            "due": c["due"][o],
            "paid": c["paid"][o],
        },
    )
    b = w.benefits.concat()
    o = np.lexsort((b["type"], b["month"], b["person"]))
    counts["benefits"] = _write_csv(
        out / "benefits.csv",
        {
            "person_id": _take(pid, b["person"][o]),
            "month": _text(months, b["month"][o]),
            "benefit_type": _text(BENEFIT_TYPES, b["type"][o]),
            "amount": b["amount"][o],
        },
    )
    return counts


def _write_medical(w: World, out: Path, ids: dict[str, pa.Array]) -> dict[str, int]:
    """visits and purchases."""
    pid, cid, hid = ids["person"], ids["clinic"], ids["pharmacy"]
    counts: dict[str, int] = {}
    v = w.visits.concat()
    o = np.lexsort((v["clinic"], v["person"], v["day"]))
    v = {k: a[o] for k, a in v.items()}
    inpatient = v["kind"] == INPATIENT
    ratio = np.asarray(w.m.level_claim_ratio)[w.c_level[v["clinic"]]]
    counts["visits"] = _write_csv(
        out / "visits.csv",
        {
            "visit_id": _ids("V", len(o), 8),
            "person_id": _take(pid, v["person"]),
            "clinic_id": _take(cid, v["clinic"]),
            "date": _dates(v["day"]),
            "kind": _text(("outpatient", "inpatient"), v["kind"]),
            "discharge_date": _dates(v["day"] + v["stay"], inpatient),
            "diagnosis": _text(DIAGNOSES, v["diag"]),
            "amount": v["amount"],
            "claimed": money(v["amount"] * ratio),
        },
    )
    p = w.purchases.concat()
    o = np.lexsort((p["pharmacy"], p["person"], p["day"]))
    p = {k: a[o] for k, a in p.items()}
    drugs = [f"D{d + 1:03d}" for d in range(N_DRUGS)]
    counts["purchases"] = _write_csv(
        out / "purchases.csv",
        {
            "purchase_id": _ids("U", len(o), 8),
            "person_id": _take(pid, p["person"]),
            "pharmacy_id": _take(hid, p["pharmacy"]),
            "date": _dates(p["day"]),
            "amount": p["amount"],
            "claimed": money(p["amount"] * 0.7),
            "drug_code": _text(drugs, p["drug"]),
            "quantity": p["quantity"].astype(np.int64),
            "days_supply": p["days_supply"].astype(np.int64),
            "clinic_id": _take(cid, p["clinic"]),
        },
    )
    return counts


def _write_agency_links(w: World, out: Path, ids: dict[str, pa.Array]) -> int:
    pid, eid, aid = ids["person"], ids["employer"], ids["agency"]
    a = w.links.concat()
    o = np.lexsort((a["entity"], a["etype"], a["agency"]))
    a = {k: x[o] for k, x in a.items()}
    entity = pc.coalesce(
        _take(pid, np.where(a["etype"] == 0, a["entity"], -1)), _take(eid, np.where(a["etype"] == 1, a["entity"], -1))
    )
    return _write_csv(
        out / "agency_links.csv",
        {
            "agency_id": _take(aid, a["agency"]),
            "entity_type": _text(("person", "employer"), a["etype"]),
            "entity_id": entity,
            "relation": _text(("placed", "represents"), a["relation"]),
            "start_date": _dates(a["start"]),
        },
    )


def _write_labels(out: Path, ids: dict[str, pa.Array], labels: dict[str, np.ndarray]) -> int | None:
    """labels.csv, or no file (and None) when there are no labels."""
    types = list(labels)
    lab_type = np.concatenate([np.full(labels[t].shape[1], i) for i, t in enumerate(types)])
    lab_idx = np.concatenate([labels[t][0] for t in types])
    lab_ids = pa.concat_arrays([_take(ids[t], labels[t][0]) for t in types])
    if len(lab_idx) == 0:  # a header-only file breaks the contract: no labels, no file
        (out / "labels.csv").unlink(missing_ok=True)
        return None
    return _write_csv(
        out / "labels.csv",
        {
            "entity_type": _text(types, lab_type),
            "entity_id": lab_ids,
            "label": np.concatenate([labels[t][1] for t in types]),
            "as_of": pa.array([AS_OF] * len(lab_idx), pa.string()),
        },
    )


def _write_truth(out: Path, ids: dict[str, pa.Array], frame: pd.DataFrame) -> int:
    truth_ids = pa.concat_arrays(
        [
            _take(ids[t], frame.loc[frame["entity_type"] == t, "entity_idx"].to_numpy())
            for t in sorted(frame["entity_type"].unique())
        ]
    )
    return _write_csv(
        out / "truth" / "truth.csv",
        {
            "entity_type": pa.array(frame["entity_type"].tolist(), pa.string()),
            "entity_id": truth_ids,
            "pattern": pa.array(frame["pattern"].tolist(), pa.string()),
            "ring_id": pa.array(frame["ring_id"].tolist(), pa.string()),
        },
    )


def gb11643(region: np.ndarray, birth: pa.Array, rank: np.ndarray, male: np.ndarray) -> pa.Array:
    """18-digit GB 11643-1999 numbers: region, birth date, a 3-digit sequence whose parity is the
    gender (odd for men) and the MOD 11-2 check character (no rng draws: the rank sets the sequence)."""
    seq = (np.asarray(rank, dtype=np.int64) % 500) * 2 + np.asarray(male, dtype=np.int64)
    first17 = _join(
        _str(region), pc.replace_substring(birth.cast(pa.string()), "-", ""), pc.utf8_lpad(_str(seq), 3, "0")
    )
    data = first17.buffers()[2]  # every value is 17 ASCII digits: the data buffer is the digit matrix
    assert data is not None
    d = np.frombuffer(data, dtype=np.uint8)[: 17 * len(first17)].reshape(-1, 17).astype(np.int64) - ord("0")
    return _join(first17, pa.array(check_chars(d).tolist(), pa.string()))


def _ids(prefix: str, n: int, width: int) -> pa.Array:
    """prefix + 1..n zero-padded to `width` digits (wider when n needs it)."""
    width = max(width, len(str(n)))
    digits = pa.array(np.arange(1, n + 1)).cast(pa.string())
    return pc.binary_join_element_wise(prefix, pc.utf8_lpad(digits, width, "0"), "")


def _take(values: pa.Array, idx: np.ndarray) -> pa.Array:
    """values[idx], null where idx < 0."""
    idx = np.asarray(idx, dtype=np.int64)
    return values.take(pa.array(idx, mask=idx < 0))


def _text(categories: tuple[str, ...] | list[str], codes: np.ndarray) -> pa.Array:
    return _take(pa.array(list(categories), pa.string()), codes)


def _dates(days: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    days = np.asarray(days, dtype=np.int64) + EPOCH_OFFSET
    mask = None if valid is None else ~np.asarray(valid, dtype=bool)
    return pa.array(days.astype(np.int32), mask=mask).cast(pa.date32())


def _str(values: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(values, dtype=np.int64)).cast(pa.string())


def _join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _write_csv(path: Path, columns: dict[str, pa.Array | np.ndarray]) -> int:
    table = pa.table(columns)
    with open(path, "wb") as f:
        f.write((",".join(table.column_names) + "\n").encode())
        pacsv.write_csv(table, f, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    return table.num_rows
