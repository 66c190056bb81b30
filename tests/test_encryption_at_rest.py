"""Personal data encrypted at rest (issue 19, item 4): after a pipeline run on a synthetic dataset,
no known ID number, name or phone of the input is found in plain text in any file under the home
and the store (Parquet and SQLite decoded, text read, raw bytes scanned) nor in the --out files;
files are 0600 and folders 0700; the encrypted snapshot reads back to the same dataset."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from composer.pipeline import run_pipeline
from graph.factory import field_cipher, open_store
from graph.memory_store import read_private_parquet, write_personal_parquet, write_private_parquet
from riskgraph.field_crypto import CannotDecrypt, FieldCipher, encrypt_table, encrypted_columns
from riskgraph.settings import Settings
from synth.generator import generate

PERSONS = 1500


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    out = tmp_path_factory.mktemp("synth")
    generate(persons=PERSONS, seed=5, out=out, progress=False)
    persons = pd.read_csv(out / "persons.csv", dtype=str)
    sample = persons.sample(40, random_state=1)
    known = [v for col in ("id_number", "name", "phone") for v in sample[col].dropna().tolist()]
    return out, known


def _texts(path: Path) -> list[str]:
    """Every decodable view of a file: its raw bytes as text, and its decoded content."""
    raw = path.read_bytes()
    views = [raw.decode("utf-8", "replace"), raw.decode("latin-1")]
    if path.suffix == ".parquet":
        try:
            views.append(pq.read_table(path).to_pandas().to_csv())
        except OSError as exc:  # Parquet modular encryption: nothing of it reads without the key
            assert "encrypted" in str(exc), exc
    elif raw.startswith(b"SQLite format 3"):
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
                views.append(pd.read_sql_query(f'SELECT * FROM "{name}"', db).to_csv())
    elif path.suffix == ".json":
        views.append(json.dumps(json.loads(raw), ensure_ascii=False))
    return views


def _scan(root: Path, known: list[str]) -> list[str]:
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        for text in _texts(path):
            found += [f"{path.relative_to(root)}: {v}" for v in known if v in text]
    return sorted(set(found))


def test_no_plain_personal_values_under_the_home_the_store_or_the_outputs(
    synthetic: tuple[Path, list[str]], tmp_path: Path
) -> None:
    data, known = synthetic
    settings = Settings(home=tmp_path / "home", progress=False)  # the store under the home
    out = tmp_path / "out"
    before = os.umask(0o077)  # as the riskgraph command sets it (cli/main.py)
    try:
        result = run_pipeline(data=data, out=out, settings=settings)
    finally:
        os.umask(before)
    assert len(known) >= 100 and set(result.dataset.tables["persons"]["id_number"]) >= {known[0]}
    assert _scan(settings.home, known) == []
    assert _scan(out, known) == []  # the --out contract files hold no names, phones or id numbers
    for path in settings.home.rglob("*"):
        if path.name in ("secret.key",) or path.is_symlink():
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path} is {oct(mode)}"
    # the encrypted snapshot reads back to the very dataset that was loaded
    store = open_store(settings.store, settings)
    store_again = type(store)(store.path, field_cipher(settings))  # type: ignore[attr-defined]
    back = store_again.dataset()
    for name, df in result.dataset.tables.items():
        pd.testing.assert_frame_equal(df, back.tables[name])


def test_a_ciphertext_needs_its_key_and_its_column() -> None:
    one, other = FieldCipher(b"1" * 32), FieldCipher(b"2" * 32)
    blob = one.encrypt("110101199001011234", "id_number")
    assert one.decrypt(blob, "id_number") == "110101199001011234"
    assert one.encrypt("x", "c") != one.encrypt("x", "c")  # a fresh nonce per value
    with pytest.raises(CannotDecrypt):
        other.decrypt(blob, "id_number")
    with pytest.raises(CannotDecrypt):
        one.decrypt(blob, "phone")
    assert one.decrypt_text(one.encrypt_text("张三", "name"), "name") == "张三"


def test_a_snapshot_table_opens_with_its_key_only_and_old_snapshots_still_read(tmp_path: Path) -> None:
    """Snapshot tables are Parquet files with their personal columns and footer encrypted by
    Parquet itself; another key does not open them, and files written value by value before
    (and under SM4) still read back."""
    df = pd.DataFrame(
        {"person_id": ["P1", "P2", "P3"], "name": ["张三", None, "Li Si"], "birth_date": ["1990-01-01"] * 3}
    ).astype({"person_id": "string", "name": "string"})
    df["birth_date"] = pd.to_datetime(df["birth_date"])
    one, other = FieldCipher(b"1" * 32), FieldCipher(b"2" * 32)
    path = tmp_path / "persons.parquet"
    write_personal_parquet(path, "persons", df, one)
    pd.testing.assert_frame_equal(read_private_parquet(path, one), df)
    assert b"Li Si" not in path.read_bytes() and b"name" not in path.read_bytes()  # nor the schema
    with pytest.raises(CannotDecrypt):
        read_private_parquet(path, None)
    with pytest.raises(CannotDecrypt):
        read_private_parquet(path, other)
    # value by value, as snapshots were written before and are under SM4
    old = tmp_path / "old.parquet"
    write_private_parquet(old, encrypt_table(pa.Table.from_pandas(df, preserve_index=False), ["name"], one))
    assert b"Li Si" not in old.read_bytes()
    pd.testing.assert_frame_equal(read_private_parquet(old, one), df)
    sm4 = FieldCipher(b"1" * 32, "sm4")
    write_personal_parquet(old, "persons", df, sm4)
    assert encrypted_columns(pq.read_schema(old)).keys() >= {"name"}
    pd.testing.assert_frame_equal(read_private_parquet(old, sm4), df)
