"""The one error root. Transient errors are retried with backoff (bounded); permanent errors
dead-letter the message and fail the task. Vendor errors are translated into these once, at the
boundary where they happen."""

from __future__ import annotations


class PodiumError(Exception):
    """Base of every error Podium raises on purpose."""


class TransientError(PodiumError):
    """Worth retrying: a timeout, a 429, a 5xx, a broker hiccup."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PermanentError(PodiumError):
    """Retrying cannot help: bad input, a denied action, a 4xx, a missing resource."""
