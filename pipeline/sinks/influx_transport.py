"""What an InfluxDB transport may raise, shared by the v1 and v2 transports and the sink.

A transport has ``describe() -> dict`` (target, no secrets), ``where`` (for messages),
``check()`` (at start), ``send(body)`` (the normal path: newline-separated UTF-8 lines, with
the transport's retries and backoff), ``post(lines)`` (used to split a rejected batch) and
``close()``.
"""

from __future__ import annotations

import json

from pipeline.errors import SinkError


class Unavailable(SinkError):
    """The server could not be reached or kept failing (5xx/429) after the retries: spool and retry later."""


class Refused(SinkError):
    """The server refused the credentials or does not know the database/bucket (401/403/404)."""


class Rejected(SinkError):
    """The server refused the content of a batch (400/413/422): some line is malformed or conflicts."""

    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(f"{status}: {message}")


def describe_http_error(status: int, body: bytes | str | None, *, limit: int = 300) -> str:
    """The server's own error text (1.x ``{"error": ...}``, 2.x ``{"message": ...}``), shortened."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    text = (body or "").strip()
    try:
        data = json.loads(text)
        if isinstance(data, dict):
            text = str(data.get("error") or data.get("message") or text)
    except ValueError:
        pass
    if len(text) > limit:
        text = text[:limit] + "..."
    return text or f"HTTP {status}"
