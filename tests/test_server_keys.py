"""The master secret and its derived keys (riskgraph/server_keys.py)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from riskgraph.server_keys import ENV_VAR, KEY_FILE, BadSecret, derived_key, master_secret


def test_generated_once_private_and_stable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    first = master_secret(tmp_path)
    assert master_secret(tmp_path) == first and len(first) == 32
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600


def test_each_purpose_has_its_own_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    keys = {p: derived_key(tmp_path, p) for p in ("masking", "audit-seal", "api-key-pepper", "field-encryption")}
    assert len(set(keys.values())) == 4
    with pytest.raises(ValueError):
        derived_key(tmp_path, "other")


def test_environment_wins_and_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "ab" * 32)
    assert master_secret(tmp_path) == bytes.fromhex("ab" * 32)
    assert not (tmp_path / KEY_FILE).exists()
    monkeypatch.setenv(ENV_VAR, "abcd")
    with pytest.raises(BadSecret):
        master_secret(tmp_path)


def test_tokens_are_keyed_and_stable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from riskgraph.server_keys import Tokens

    monkeypatch.delenv(ENV_VAR, raising=False)
    tokens = Tokens.of(tmp_path)
    assert tokens("13800000000") == Tokens.of(tmp_path)("13800000000") != tokens("13800000001")
    monkeypatch.setenv(ENV_VAR, "cd" * 32)
    assert Tokens.of(tmp_path)("13800000000") != tokens("13800000000")  # another key, another token
