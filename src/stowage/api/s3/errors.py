"""The S3 errors this package raises, as S3 words them on the wire.

Each one is an :class:`S3Error` built by a small function named after its code, so the
route layer renders ``<Error><Code>…</Code><Message>…</Message>{extra}</Error>`` with the
status and never has to know which check failed. Codes, statuses and messages are AWS's
own (the S3 "Error responses" list; botocore's model names only ``AccessDenied`` and
``InvalidRequest`` among these, the rest are documented but not modelled), so clients that
switch on the code (botocore's retry and clock-skew correction read
``RequestTimeTooSkewed``) behave as they do against AWS.
"""

from __future__ import annotations

from collections.abc import Mapping

from ...core.naming import MAX_NAME_BYTES

MAX_SKEW_MS = 15 * 60 * 1000


class S3Error(Exception):
    """An S3 error response: ``code`` and ``message`` for the XML body, ``status`` for
    the HTTP status, and ``extra`` the further elements S3 puts in the body, in order."""

    def __init__(
        self, code: str, message: str, status: int, extra: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.extra: dict[str, str] = dict(extra or {})


def access_denied(message: str = "Access Denied", **extra: str) -> S3Error:
    return S3Error("AccessDenied", message, 403, extra)


def quota_exceeded(message: str) -> S3Error:
    """An upload over a stowage quota. AWS has no such code (its limits are per account,
    not per bucket); like MinIO's bucket quotas, stowage names one, with 403 as for any
    request understood and refused, and says in the message which quota it is."""
    return S3Error("QuotaExceeded", message, 403)


def invalid_access_key_id(access_key_id: str) -> S3Error:
    return S3Error(
        "InvalidAccessKeyId",
        "The AWS Access Key Id you provided does not exist in our records.",
        403,
        {"AWSAccessKeyId": access_key_id},
    )


def signature_does_not_match(
    access_key_id: str, string_to_sign: str, canonical_request: str | None = None
) -> S3Error:
    """S3 echoes what it signed so a client author can diff it against their own; the
    chunk and trailer checks have no canonical request, only a string to sign."""
    extra = {"AWSAccessKeyId": access_key_id, "StringToSign": string_to_sign}
    if canonical_request is not None:
        extra["CanonicalRequest"] = canonical_request
    return S3Error(
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
        403,
        extra,
    )


def request_time_too_skewed(request_time: str, server_time: str) -> S3Error:
    return S3Error(
        "RequestTimeTooSkewed",
        "The difference between the request time and the current time is too large.",
        403,
        {
            "RequestTime": request_time,
            "ServerTime": server_time,
            "MaxAllowedSkewMilliseconds": str(MAX_SKEW_MS),
        },
    )


def authorization_header_malformed(message: str) -> S3Error:
    return S3Error("AuthorizationHeaderMalformed", message, 400)


def authorization_query_parameters_error(message: str) -> S3Error:
    return S3Error("AuthorizationQueryParametersError", message, 400)


def invalid_argument(message: str, name: str | None = None, value: str | None = None) -> S3Error:
    extra = {}
    if name is not None:
        extra["ArgumentName"] = name
        extra["ArgumentValue"] = value or ""
    return S3Error("InvalidArgument", message, 400, extra)


def invalid_request(message: str) -> S3Error:
    return S3Error("InvalidRequest", message, 400)


def content_sha256_mismatch(declared: str, computed: str) -> S3Error:
    return S3Error(
        "XAmzContentSHA256Mismatch",
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
        400,
        {"ClientComputedContentSHA256": declared, "S3ComputedContentSHA256": computed},
    )


def bad_digest(message: str) -> S3Error:
    return S3Error("BadDigest", message, 400)


def invalid_digest() -> S3Error:
    return S3Error("InvalidDigest", "The Content-MD5 you specified was invalid.", 400)


def incomplete_body(
    message: str = "You did not provide the number of bytes specified by the "
    "Content-Length HTTP header",
) -> S3Error:
    return S3Error("IncompleteBody", message, 400)


def missing_content_length() -> S3Error:
    return S3Error("MissingContentLength", "You must provide the Content-Length HTTP header.", 411)


def malformed_trailer() -> S3Error:
    return S3Error(
        "MalformedTrailerError",
        "The request contained trailing data that was not well-formed or did not "
        "conform to our published schema.",
        400,
    )


# --- buckets, objects and requests -------------------------------------------------------


def no_such_bucket(bucket: str) -> S3Error:
    return S3Error(
        "NoSuchBucket", "The specified bucket does not exist", 404, {"BucketName": bucket}
    )


def no_such_key(key: str) -> S3Error:
    return S3Error("NoSuchKey", "The specified key does not exist.", 404, {"Key": key})


def key_too_long(size: int) -> S3Error:
    return S3Error(
        "KeyTooLongError",
        "Your key is too long",
        400,
        {"MaxSizeAllowed": str(MAX_NAME_BYTES), "Size": str(size)},
    )


def invalid_bucket_name(bucket: str) -> S3Error:
    return S3Error(
        "InvalidBucketName", "The specified bucket is not valid.", 400, {"BucketName": bucket}
    )


def bucket_already_owned_by_you(bucket: str) -> S3Error:
    return S3Error(
        "BucketAlreadyOwnedByYou",
        "Your previous request to create the named bucket succeeded and you already own it.",
        409,
        {"BucketName": bucket},
    )


def bucket_already_exists(bucket: str) -> S3Error:
    return S3Error(
        "BucketAlreadyExists",
        "The requested bucket name is not available. The bucket namespace is shared by all "
        "users of the system. Please select a different name and try again.",
        409,
        {"BucketName": bucket},
    )


def bucket_not_empty(bucket: str) -> S3Error:
    return S3Error(
        "BucketNotEmpty",
        "The bucket you tried to delete is not empty",
        409,
        {"BucketName": bucket},
    )


def entity_too_large(limit: int) -> S3Error:
    return S3Error(
        "EntityTooLarge",
        "Your proposed upload exceeds the maximum allowed size",
        400,
        {"MaxSizeAllowed": str(limit)},
    )


def not_implemented(what: str) -> S3Error:
    """Operations stowage does not serve (ACLs, policies, versioning, …): refused, never a
    wrong success."""
    return S3Error(
        "NotImplemented",
        f"A header or query you provided implies functionality that is not implemented: {what}",
        501,
    )


def method_not_allowed(method: str) -> S3Error:
    return S3Error(
        "MethodNotAllowed",
        "The specified method is not allowed against this resource.",
        405,
        {"Method": method},
    )


def internal_error() -> S3Error:
    return S3Error("InternalError", "We encountered an internal error. Please try again.", 500)


def slow_down(message: str) -> S3Error:
    return S3Error("SlowDown", message, 503)


def request_timeout(message: str) -> S3Error:
    return S3Error("RequestTimeout", message, 400)


def service_unavailable(message: str) -> S3Error:
    return S3Error("ServiceUnavailable", message, 503)


def precondition_failed(condition: str) -> S3Error:
    return S3Error(
        "PreconditionFailed",
        "At least one of the pre-conditions you specified did not hold",
        412,
        {"Condition": condition},
    )


def invalid_range(size: int, status: int = 416) -> S3Error:
    """A Range beyond the object answers 416; a copy's source range beyond the source is
    a fault of the request, and S3 answers it 400."""
    return S3Error(
        "InvalidRange",
        "The requested range is not satisfiable",
        status,
        {"ActualObjectSize": str(size)},
    )


def malformed_xml() -> S3Error:
    return S3Error(
        "MalformedXML",
        "The XML you provided was not well-formed or did not validate against our published schema",
        400,
    )


def missing_content_md5() -> S3Error:
    return S3Error(
        "InvalidRequest",
        "Missing required header for this request: Content-MD5 (or an x-amz-checksum-*)",
        400,
    )


def copy_onto_itself() -> S3Error:
    return S3Error(
        "InvalidRequest",
        "This copy request is illegal because it is trying to copy an object to itself "
        "without changing the object's metadata, storage class, website redirect location "
        "or encryption attributes.",
        400,
    )


def no_such_upload(upload_id: str) -> S3Error:
    return S3Error(
        "NoSuchUpload",
        "The specified upload does not exist. The upload ID may be invalid, or the upload may "
        "have been aborted or completed.",
        404,
        {"UploadId": upload_id},
    )


def invalid_part(message: str) -> S3Error:
    return S3Error("InvalidPart", message, 400)


def invalid_part_order(message: str) -> S3Error:
    return S3Error("InvalidPartOrder", message, 400)


def entity_too_small(message: str, **extra: str) -> S3Error:
    return S3Error("EntityTooSmall", message, 400, extra)


def invalid_policy_document(message: str) -> S3Error:
    """A POST form's policy that cannot be read as one."""
    return S3Error("InvalidPolicyDocument", f"Invalid Policy: {message}", 400)


def invalid_tag(message: str) -> S3Error:
    return S3Error("InvalidTag", message, 400)
