"""The core's domain errors as S3 words them: the core says what went wrong, S3 has a code
for each (and which one can depend on whether the request named a key)."""

from __future__ import annotations

from ...core import errors as e
from ...core.objects import NoSuchUpload, PartProblem
from . import errors
from .buckets import OWNED_FORM
from .errors import S3Error
from .requests import S3Request


def s3_error(exc: e.StowageError, request: S3Request) -> S3Error:
    if isinstance(exc, NoSuchUpload):
        return errors.no_such_upload(request.query.get("uploadId", ""))
    if isinstance(exc, PartProblem):
        worded = {
            "order": errors.invalid_part_order,
            "too_small": errors.entity_too_small,
        }.get(exc.code, errors.invalid_part)
        return worded(exc.message)
    if isinstance(exc, e.DigestMismatch):
        if exc.digest == "sha256":
            return errors.content_sha256_mismatch(exc.claimed, exc.computed)
        return errors.bad_digest("The Content-MD5 you specified did not match what we received.")
    if isinstance(exc, e.FieldErrors):
        if any(p.code == "dns_name" for p in exc.problems):
            return errors.invalid_bucket_name(request.bucket)
        return errors.invalid_argument(exc.message)
    if isinstance(exc, e.NotEmpty):
        return errors.bucket_not_empty(request.bucket)
    if isinstance(exc, e.ConditionFailed):
        return errors.precondition_failed("If-Match")
    if isinstance(exc, e.TakenByAnother):
        return errors.bucket_already_exists(request.bucket)
    if isinstance(exc, e.Ambiguous):
        return errors.invalid_request(f"{exc.message}: {OWNED_FORM}")
    if isinstance(exc, e.AlreadyExists):
        return errors.bucket_already_owned_by_you(request.bucket)
    if isinstance(exc, e.NotFound | e.Gone):
        if request.key:
            return errors.no_such_key(request.key)
        return errors.no_such_bucket(request.bucket)
    if isinstance(exc, e.Unauthenticated | e.Forbidden | e.BadSignature):
        return errors.access_denied()
    if isinstance(exc, e.QuotaExceeded):
        return errors.quota_exceeded(exc.message)
    if isinstance(exc, e.TooLarge):
        return errors.entity_too_large(request.announced_length() or 0)
    if isinstance(exc, e.BodyTimeout):
        return errors.request_timeout(exc.message)
    if isinstance(exc, e.TooBusy):
        return errors.slow_down(exc.message)
    if isinstance(exc, e.Unavailable | e.InsufficientStorage):
        return errors.service_unavailable(exc.message)
    if isinstance(exc, e.Invalid):
        return errors.invalid_argument(exc.message)
    return errors.invalid_request(exc.message)
