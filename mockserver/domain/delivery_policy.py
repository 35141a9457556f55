"""When a webhook delivery is retried, and after how long.

Connection errors, timeouts, 429 and 5xx are worth another try (the receiver may recover);
any other 4xx means the request itself is unwelcome and is not retried. Back-off doubles
from the base delay: base, 2*base, 4*base, ...
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay_seconds: float = 1.0

    def __post_init__(self):
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay_seconds < 0:
            raise ValueError("base_delay_seconds must not be negative")

    @staticmethod
    def succeeded(status_code: int | None) -> bool:
        return status_code is not None and 200 <= status_code < 300

    @staticmethod
    def retryable(status_code: int | None) -> bool:
        """``None`` stands for a connection error or a timeout."""
        return status_code is None or status_code == 429 or status_code >= 500

    def delay_after(self, attempt: int) -> timedelta:
        """How long to wait after failed attempt number ``attempt`` (1-based)."""
        return timedelta(seconds=self.base_delay_seconds * (2 ** (attempt - 1)))

    def should_retry(self, attempt: int, status_code: int | None) -> bool:
        return self.retryable(status_code) and attempt < self.max_attempts
