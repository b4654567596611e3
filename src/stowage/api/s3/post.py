"""POST Object: uploads from an HTML form (``multipart/form-data`` to ``/{bucket}``).

A browser cannot sign a request, so a form carries a policy signed ahead of time by
someone holding a key: a base64 JSON document with an ``expiration`` and ``conditions``
that every field of the form must meet (``eq``, ``starts-with``, ``content-length-range``),
signed with SigV2 (``AWSAccessKeyId``, ``signature``: HMAC-SHA1) or SigV4
(``x-amz-credential``, ``x-amz-date``, ``x-amz-signature``: the day's signing key). The
upload is then made as the key's user, under the same access rules as a PutObject. Field
names are case-insensitive; every field but those in ``UNCHECKED`` (and ``x-ignore-*``)
must be named by a condition, and a condition on a field the form lacks is checked
against the empty string. Fields after the ``file`` part are not read, as on S3.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from starlette.responses import Response

from ...core.access import Principal
from ...core.objects import KEYS
from ...service import Stowage
from ..common.form_upload import FormUpload
from . import acl, errors, sigv2, tagging
from .buckets import writable
from .headers import stored
from .objects import DEFAULT_TYPE, META, etag
from .requests import S3Request
from .responses import xml_response
from .sigv4 import sign, signatures_equal, signing_key
from .xml import element

# Fields that need no condition: the signature's own, the file, and how to answer.
UNCHECKED = frozenset(
    {"policy", "signature", "awsaccesskeyid", "x-amz-signature", "file", "success_action_status"}
)
ANSWERS = {"200": 200, "201": 201, "204": 204}  # anything else: 204, as S3 answers
V4 = "AWS4-HMAC-SHA256"


def _refused(message: str) -> errors.S3Error:
    return errors.access_denied(f"Invalid according to Policy: {message}")


@dataclass(frozen=True)
class Policy:
    """A decoded policy: its conditions, and the size range the file must be in."""

    conditions: list[tuple[str, str, str]]  # (operator, field, value), names lowercased
    smallest: int
    largest: int | None

    @classmethod
    def decode(cls, encoded: str, now: datetime) -> Policy:
        try:
            document = orjson.loads(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            raise errors.invalid_policy_document("Invalid JSON.") from None
        if not isinstance(document, dict):
            raise errors.invalid_policy_document("Invalid JSON.")
        expiration = document.get("expiration")
        if not isinstance(expiration, str):
            raise errors.invalid_policy_document("Policy missing expiration.")
        try:
            expires = datetime.fromisoformat(expiration.replace("Z", "+00:00"))
        except ValueError:
            raise errors.invalid_policy_document(
                f"Invalid 'expiration' value: '{expiration}'"
            ) from None
        if "T" not in expiration or expires.tzinfo is None:
            raise errors.invalid_policy_document(f"Invalid 'expiration' value: '{expiration}'")
        if expires <= now:
            raise _refused("Policy expired.")
        listed = document.get("conditions")
        if not isinstance(listed, list):
            raise errors.invalid_policy_document("Policy missing conditions.")
        policy = cls([], 0, None)
        for condition in listed:
            policy = policy._with(condition)
        return policy

    def _with(self, condition: Any) -> Policy:
        if isinstance(condition, dict):
            if len(condition) != 1:
                raise errors.invalid_policy_document(
                    "Invalid Simple-Condition: Simple-Conditions must have exactly one "
                    "property specified."
                )
            ((name, value),) = condition.items()
            return self._add("eq", f"${name}", value)
        if not isinstance(condition, list) or not condition or not isinstance(condition[0], str):
            raise errors.invalid_policy_document(
                f"Invalid condition: {orjson.dumps(condition).decode()}"
            )
        operator = condition[0].lower()
        if operator == "content-length-range":
            bounds = condition[1:]
            if len(bounds) != 2 or not all(type(b) is int and b >= 0 for b in bounds):
                raise errors.invalid_policy_document(
                    "Invalid content-length-range: expecting two positive integers."
                )
            if bounds[0] > bounds[1]:
                raise errors.invalid_policy_document(
                    "Invalid content-length-range: the minimum exceeds the maximum."
                )
            return Policy(self.conditions, bounds[0], bounds[1])
        if operator not in ("eq", "starts-with") or len(condition) != 3:
            raise errors.invalid_policy_document(
                f"Invalid condition: {orjson.dumps(condition).decode()}"
            )
        return self._add(operator, condition[1], condition[2])

    def _add(self, operator: str, name: Any, value: Any) -> Policy:
        if not isinstance(name, str) or not isinstance(value, str):
            raise errors.invalid_policy_document(
                "Invalid condition: names and values must be strings."
            )
        field = name.removeprefix("$").lower()
        return Policy([*self.conditions, (operator, field, value)], self.smallest, self.largest)

    def check(self, fields: dict[str, str]) -> None:
        """Every condition met by ``fields``, and every field named by a condition."""
        for operator, field, value in self.conditions:
            given = fields.get(field, "")
            met = given == value if operator == "eq" else given.startswith(value)
            if not met:
                shown = orjson.dumps([operator, f"${field}", value]).decode()
                raise _refused(f"Policy Condition failed: {shown}")
        named = {field for _, field, _ in self.conditions}
        for field in fields:
            if field not in named and field not in UNCHECKED and not field.startswith("x-ignore-"):
                raise _refused(f"Extra input fields: {field}")

    async def sized(self, data: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """The file's bytes, ending in EntityTooLarge or EntityTooSmall instead when its
        size is out of the policy's range (before the object is stored)."""
        size = 0
        async for chunk in data:
            size += len(chunk)
            if self.largest is not None and size > self.largest:
                raise errors.entity_too_large(self.largest)
            yield chunk
        if size < self.smallest:
            raise errors.entity_too_small(
                "Your proposed upload is smaller than the minimum allowed size",
                MinSizeAllowed=str(self.smallest),
                ProposedSize=str(size),
            )


async def _signer(fields: dict[str, str], stowage: Stowage) -> Principal | None:
    """The user whose key signed the form's policy; None for a form without one."""
    policy = fields.get("policy")
    if policy is None:
        return None
    if fields.get("x-amz-algorithm") == V4:
        credential = _required(fields, "x-amz-credential")
        signature = _required(fields, "x-amz-signature")
        access_key_id, _, scope = credential.partition("/")
        date, _, region = scope.partition("/")
        region = region.partition("/")[0]
    else:
        access_key_id = _required(fields, "awsaccesskeyid")
        signature = _required(fields, "signature")
    found = await stowage.access.key_for(access_key_id)
    if found is None:
        raise errors.invalid_access_key_id(access_key_id)
    caller, secret = found
    if fields.get("x-amz-algorithm") == V4:
        expected = sign(signing_key(secret, date, region), policy)
    else:
        expected = sigv2.sign(secret, policy)
    if not signatures_equal(expected, signature):
        raise errors.signature_does_not_match(access_key_id, policy)
    return caller


def _required(fields: dict[str, str], name: str) -> str:
    value = fields.get(name)
    if value is None:
        raise errors.invalid_argument(f"Bucket POST must contain a field named '{name}'.", name, "")
    return value


async def post_object(request: S3Request, stowage: Stowage) -> Response:
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise errors.invalid_request(
            "Bucket POST must be of the enclosure-type multipart/form-data"
        )
    form = FormUpload(content_type, request.body())
    await form.read_fields()
    fields = {name.lower(): value for name, value in form.fields.items()}
    if not form.has_file:
        raise errors.invalid_argument(
            "POST requires exactly one file upload per request.", "file", "0"
        )
    key = _required(fields, "key")
    if "${filename}" in key:
        key = key.replace("${filename}", form.file_name or "")
    caller = await _signer(fields, stowage)
    policy: Policy | None = None
    if caller is not None:
        now = datetime.fromtimestamp(stowage.clock.now_ms() / 1000, UTC)
        policy = Policy.decode(fields["policy"], now)
        policy.check({**fields, "bucket": request.bucket, "key": key})
    request.caller = caller
    caller, bucket = await writable(request, stowage)
    acl.check_object_canned(fields.get("acl"), bucket)
    body = policy.sized(form.file()) if policy else form.file()
    obj = await stowage.objects.put(
        caller,
        key,
        bucket,
        body,
        None,
        KEYS,
        metadata={n[len(META) :]: v for n, v in fields.items() if n.startswith(META)} or None,
        mime_type=fields.get("content-type") or DEFAULT_TYPE,
        headers=stored(fields),
        tags=tagging.from_xml(fields["tagging"].encode()) if "tagging" in fields else None,
    )
    host = request.headers.get("host", "")
    location = (
        f"{request.scope.get('scheme', 'http')}://{host}/{quote(request.bucket)}/{quote(key)}"
    )
    headers = {"ETag": etag(obj), "Location": location}
    redirect = fields.get("success_action_redirect") or fields.get("redirect")
    if redirect:
        query = urlencode({"bucket": request.bucket, "key": key, "etag": etag(obj)})
        joiner = "&" if "?" in redirect else "?"
        return Response(status_code=303, headers={**headers, "Location": redirect + joiner + query})
    status = ANSWERS.get(fields.get("success_action_status", ""), 204)
    if status != 201:
        return Response(status_code=status, headers=headers)
    answer = [
        element("Location", location),
        element("Bucket", request.bucket),
        element("Key", key),
        element("ETag", etag(obj)),
    ]
    return xml_response("PostResponse", answer, status=201, headers=headers)
