"""The S3-compatible API, on a port of its own: buckets are root namespaces, keys are object
names in them, and requests are signed with access keys (SigV4)."""

from ..common.dialect import Dialect
from . import listener

DIALECT = Dialect(name="s3", listener=listener.serving)
