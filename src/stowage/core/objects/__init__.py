"""The object lifecycle: create → upload → complete, or one whole-object put → read →
delete or expire.

States: UPLOADING (bytes may be (re)uploaded) → READ_ONLY (immutable, downloadable) →
DELETED (a tombstone kept for ``deleted_retention`` so clients see why a download fails).
Expired objects disappear immediately and the reaper removes their rows and blobs.

One module per use case (``reads``, ``lifecycle`` for the three steps, ``put`` for whole
objects, ``multipart`` for uploads in parts, ``removal``, ``tags``), over ``base``;
``ObjectService`` is all of them, the one object the adapters hold. Reads and changes
follow one access policy (``access.may_read`` and ``access.may_modify``) whichever
dialect asks.
"""

from .base import Caller, Limits
from .lifecycle import Lifecycle, UploadTicket
from .multipart import MAX_PARTS, Multipart, NoSuchUpload, PartProblem
from .put import (
    ANY_NAMES,
    KEYS,
    NEW_KEYS,
    UNIQUE_NAME_RULE,
    UNIQUE_NAMES,
    OnConflict,
    PutPolicy,
    WholePut,
)
from .reads import MAX_PAGE, Reads
from .removal import Removal
from .tags import Tagging


class ObjectService(Reads, Lifecycle, WholePut, Multipart, Removal, Tagging):
    """Every object use case, over one set of backends."""


__all__ = [
    "ANY_NAMES",
    "KEYS",
    "MAX_PAGE",
    "MAX_PARTS",
    "NEW_KEYS",
    "UNIQUE_NAMES",
    "UNIQUE_NAME_RULE",
    "Caller",
    "Limits",
    "NoSuchUpload",
    "ObjectService",
    "OnConflict",
    "PartProblem",
    "PutPolicy",
    "UploadTicket",
]
