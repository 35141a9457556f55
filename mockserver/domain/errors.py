"""The one error type of the domain.

Domain code raises ``MockError`` with the HTTP status the m3ter API would answer
and a message that names the offending field. The web layer (``mockserver.api.errors``)
is the only place that turns it into the ``{"message": ...}`` body the spec documents.
"""

from __future__ import annotations


class MockError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message

    @classmethod
    def bad_request(cls, message: str) -> "MockError":
        return cls(400, message)

    @classmethod
    def not_found(cls, message: str) -> "MockError":
        return cls(404, message)

    @classmethod
    def conflict(cls, message: str) -> "MockError":
        return cls(409, message)

    @classmethod
    def not_implemented(cls, message: str) -> "MockError":
        return cls(501, message)

    def __repr__(self) -> str:
        return f"MockError({self.status}, {self.message!r})"
