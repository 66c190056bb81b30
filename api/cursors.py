"""Opaque keyset cursors of the paged lists: the sort key of the last row, as base64 JSON."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from api.errors import InvalidParameter


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def decode_cursor(cursor: str, n: int) -> list[Any]:
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, orjson.JSONDecodeError, ValueError) as exc:
        raise InvalidParameter("cursor is not one this API returned") from exc
    if not isinstance(values, list) or len(values) != n:
        raise InvalidParameter("cursor is not one this API returned")
    return values
