"""Domain errors. Each API dialect maps them to its own status codes and body shapes."""

from __future__ import annotations


class StowageError(Exception):
    """Base of every error a caller can cause; ``message`` is safe to show to the caller."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Invalid(StowageError):
    """The request is malformed or a value is out of bounds."""


class Unauthenticated(StowageError):
    """No credentials, or credentials that match no live token."""


class Forbidden(StowageError):
    """Authenticated, but the token's scopes do not allow the operation."""


class NotFound(StowageError):
    """Absent, expired, or belonging to someone else: callers cannot tell which."""


class Conflict(StowageError):
    """The object is not in a state that allows the operation."""


class Gone(StowageError):
    """The object was deleted; its record remains for a while so clients can see why."""


class TooLarge(StowageError):
    """A body exceeded the configured limit; nothing was stored."""


class BadSignature(StowageError):
    """A presigned URL was tampered with, expired, or used for another object or method."""


class FieldErrors(Invalid):
    """Validation failures by field, all reported at once (the Djinn error shape)."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in fields.items()))
        self.fields = fields


class NameTaken(Conflict):
    """A uniquely named object with this name already exists in the same place."""


class NamespaceGone(NotFound):
    """The namespace a write named was deleted while the write was in flight."""


class Unavailable(StowageError):
    """A dependency (database, blob store) cannot be reached; worth retrying shortly."""

    retry_after_s = 5


class BodyTimeout(StowageError):
    """The client stopped sending the request body; what arrived was discarded."""


class InsufficientStorage(StowageError):
    """The blob store ran out of space (or hit a size limit) mid-write; nothing was kept."""


class TooBusy(StowageError):
    """Too many uploads at once, for this token or for this server; retry shortly."""

    retry_after_s = 1
