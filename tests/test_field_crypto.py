"""Field encryption (riskgraph/field_crypto.py): AES-GCM and SM4 (national cryptography)."""

from __future__ import annotations

import pytest

from riskgraph.field_crypto import CannotDecrypt, FieldCipher

KEY = bytes(range(32))
VALUES = ["", "13800138000", "张三", "110101199003071234" * 5]


@pytest.mark.parametrize("algorithm", ["aes-gcm", "sm4"])
def test_round_trip_fresh_nonces_and_column_binding(algorithm: str) -> None:
    cipher = FieldCipher(KEY, algorithm)
    for value in VALUES:
        blob = cipher.encrypt(value, "phone")
        assert cipher.decrypt(blob, "phone") == value
        assert cipher.encrypt(value, "phone") != blob  # a fresh nonce or counter each time
        assert value.encode() not in blob or not value
        with pytest.raises(CannotDecrypt):
            cipher.decrypt(blob, "name")  # bound to its column
    text = cipher.encrypt_text("13800138000", "phone")
    assert text.startswith("enc1:") and cipher.decrypt_text(text, "phone") == "13800138000"


def test_sm4_detects_tampering_and_other_keys() -> None:
    blob = bytearray(FieldCipher(KEY, "sm4").encrypt("13800138000", "phone"))
    blob[20] ^= 1
    with pytest.raises(CannotDecrypt):
        FieldCipher(KEY, "sm4").decrypt(bytes(blob), "phone")
    good = FieldCipher(KEY, "sm4").encrypt("13800138000", "phone")
    with pytest.raises(CannotDecrypt):
        FieldCipher(bytes(32), "sm4").decrypt(good, "phone")


def test_a_store_written_under_one_algorithm_stays_readable_under_the_other() -> None:
    sm4 = FieldCipher(KEY, "sm4").encrypt("x", "c")
    aes = FieldCipher(KEY, "aes-gcm").encrypt("x", "c")
    assert FieldCipher(KEY, "aes-gcm").decrypt(sm4, "c") == "x"
    assert FieldCipher(KEY, "sm4").decrypt(aes, "c") == "x"


def test_sm4_matches_the_standard_test_vector() -> None:
    from gmssl.sm4 import SM4_ENCRYPT, CryptSM4

    sm4 = CryptSM4()
    sm4.set_key(bytes.fromhex("0123456789abcdeffedcba9876543210"), SM4_ENCRYPT)
    out = bytes(sm4.crypt_ecb(bytes.fromhex("0123456789abcdeffedcba9876543210")))
    assert out[:16].hex() == "681edf34d206965e86b3e94f536e4246"  # GB/T 32907-2016 appendix A
