"""Domain errors. Each API dialect maps them to its own status codes and body shapes."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping


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


@dataclasses.dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with one input field: what (``code``, from ``NEUTRAL``) and the
    values a message needs (``detail``). The core decides what is wrong; each dialect
    words it in its own way, so no dialect's wording lives here."""

    field: str
    code: str
    detail: Mapping[str, object] = dataclasses.field(default_factory=dict)

    def describe(self) -> str:
        return f"{self.field}: " + NEUTRAL[self.code].format(**self.detail)


# What each code means, in the words a caller without a dialect of its own is shown.
NEUTRAL = {
    "required": "required",
    "not_string": "must be a string",
    "nul": "must not contain NUL bytes",
    "pattern": "must match {rule}",
    "too_long": "at most {max} characters",
    "length": "must be {min} to {max} characters",
    "charset": "letters and digits only",
    "taken": "already taken",
    "too_large": "over the limit of {limit} bytes",
    "bad_path": "{ref!r} is not a namespace path",
    "bad_segment": "{ref!r}: a namespace name holds letters and digits only",
    "too_deep": "deeper than {max} levels",
    "denied": "no permission to write there",
    "missing": "does not exist",
    "choice": "must be one of {choices}",
    "self": "cannot be yourself",
    "member": "already a collaborator",
    "invited": "already invited",
    "dns_name": "must be 3 to 63 lowercase letters, digits, '.' or '-', as DNS names are",
    "quota": "over the {scope}'s quota of {limit} {dimension}",
}


class FieldErrors(Invalid):
    """Validation failures by field, all reported at once, in the order found."""

    def __init__(self, *problems: Problem) -> None:
        super().__init__("; ".join(p.describe() for p in problems))
        self.problems = problems


class DigestMismatch(Invalid):
    """The bytes stored do not have the digest their client declared (``Claimed``)."""

    def __init__(self, digest: str, claimed: str, computed: str) -> None:
        super().__init__(f"the body's {digest} is {computed}, not {claimed} as declared")
        self.digest = digest  # "md5" or "sha256"
        self.claimed = claimed
        self.computed = computed


class NameTaken(Conflict):
    """A uniquely named object with this name already exists in the same place."""


class ConditionFailed(Conflict):
    """The object a conditional write names is not the one the condition expects."""


class NotEmpty(Conflict):
    """A namespace that still holds objects or namespaces cannot be removed this way."""


class AlreadyExists(Conflict):
    """The caller already has what it asked to create."""


class TakenByAnother(Conflict):
    """The name is one that a single owner may hold across all users, and another has it."""


class Ambiguous(Invalid):
    """A name that several users hold was given without saying whose."""


class NamespaceGone(NotFound):
    """The namespace a write named was deleted while the write was in flight."""


class QuotaExceeded(StowageError):
    """A write would take an owner's or a root namespace's usage past its quota; nothing
    of it was kept. ``scope`` is "user" or "namespace", ``dimension`` "bytes" or
    "objects"; ``usage`` is what the write would have made it."""

    def __init__(self, scope: str, dimension: str, limit: int, usage: int) -> None:
        super().__init__(
            f"quota exceeded: the {scope} may hold {limit} {dimension}, "
            f"and this upload would make it {usage}"
        )
        self.scope = scope
        self.dimension = dimension
        self.limit = limit
        self.usage = usage

    @property
    def problem(self) -> Problem:
        """The refusal as a problem with the uploaded file (how Djinn words it)."""
        detail = {"scope": self.scope, "dimension": self.dimension, "limit": self.limit}
        return Problem("file", "quota", detail)


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
