"""The one error the client raises."""

from __future__ import annotations

__all__ = ["EngramError"]


class EngramError(Exception):
    """An error from Engram: `code` is the API's stable error code
    (`not_found`, `invalid_input`, `unauthorized`, `unreachable`, …)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.message = message
