"""The request-head limit of `riskgraph serve`, enforced in uvicorn's connection protocol BEFORE the
HTTP parser sees the bytes (uvicorn's httptools parser has no header limit of its own, and its h11
limit answers 400): a request line plus headers over `api_max_header_bytes` gets
431 Request Header Fields Too Large and the connection is closed. Nothing of such a head is parsed
or kept: only its length is counted while looking for the blank line that ends it.

`riskgraph serve` passes `HeaderLimitedProtocol` as uvicorn's `http` protocol class
(`uvicorn --http api.http_limits:HeaderLimitedProtocol` does the same from uvicorn's command line);
`max_head` comes from the settings through `configure`.
"""

from __future__ import annotations

import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DEFAULT_MAX_HEAD = 16_384
END = b"\r\n\r\n"
DRAIN_S = 2.0  # after a 431, read and drop what the client still sends, so it can read the answer


def _answer_431(limit: int) -> bytes:
    body = json.dumps(
        {"error": {"code": "headers_too_large", "message": f"request headers over {limit} bytes"}}
    ).encode()
    return (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
        b"content-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"connection: close\r\n\r\n" + body
    )


class HeaderLimitedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the request head counted before parsing."""

    max_head = DEFAULT_MAX_HEAD

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # the bytes now arriving belong to a request head
        self._head_seen = 0  # bytes of the current head seen so far
        self._tail = b""  # the last 3 bytes seen, for an end marker split across reads
        self._rejected = False

    @classmethod
    def configure(cls, max_head: int) -> type[HeaderLimitedProtocol]:
        """A subclass with another limit (the settings' `api_max_header_bytes`)."""
        return type("HeaderLimitedProtocol", (cls,), {"max_head": max_head})

    def data_received(self, data: bytes) -> None:
        if self._rejected:
            return  # draining what the client still sends after the 431
        if self._in_head:
            window = self._tail + data
            end = window.find(END)
            if end < 0:
                self._head_seen += len(data)
                self._tail = window[-3:]
                if self._head_seen > self.max_head:
                    self._reject()
                    return
            elif self._head_seen + end + len(END) - len(self._tail) > self.max_head:
                self._reject()
                return
            else:
                self._head_seen, self._tail = 0, b""
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._in_head = False
        # a head that came whole inside one read after another request (pipelining) is measured here
        size = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
        if size > self.max_head:
            self._reject()
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._rejected:
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._in_head = True
        self._head_seen, self._tail = 0, b""
        if not self._rejected:
            super().on_message_complete()

    def _reject(self) -> None:
        self._rejected = True
        self.logger.warning("request headers over %d bytes: 431", self.max_head)
        if self.transport.is_closing():
            return
        self.transport.write(_answer_431(self.max_head))
        # Closing at once with unread bytes in the socket makes the kernel reset the connection,
        # and the client may lose the answer: drop what still comes for a moment, then close.
        self.loop.call_later(DRAIN_S, self.transport.close)
