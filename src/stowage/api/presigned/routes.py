"""Presigned blob endpoints (local mode): the URLs in ``upload_url`` and ``download_url``.

No bearer token here: the HMAC signature in the query is the credential.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from ...core.errors import Gone, Invalid, NotFound
from ...core.limits import creator_caller
from ...core.presign import Grant
from ...service import Stowage
from ..common.deps import StowageDep, declared_length, request_body
from ..common.links import BLOBS
from ..common.requests import StrictRoute
from ..common.responses import BLOB_RESPONSES, MIME_TYPES, blob_response

router = APIRouter(prefix=BLOBS, tags=["presigned"], route_class=StrictRoute)


def check_signature(
    stowage: Stowage, method: str, object_id: str, expires: str | None, signature: str | None
) -> Grant:
    """What the URL's signature allows (BadSignature when it does not check out)."""
    return stowage.presigner.verify(method, object_id, expires, signature, stowage.clock.now_ms())


def signed_for(method: str) -> object:
    """A dependency yielding the ``Grant`` of the URL's signature, once it checks out."""

    async def verify(
        object_id: str,
        stowage: StowageDep,
        expires: str | None = None,
        signature: str | None = None,
    ) -> Grant:
        return check_signature(stowage, method, object_id, expires, signature)

    return Depends(verify)


SIGNED: dict[int | str, dict[str, Any]] = {
    403: {"description": "Signature missing, tampered, expired, or for another object/method"},
    404: {"description": "No such object"},
}


@router.put(
    "/{object_id}",
    response_class=Response,
    responses={
        **SIGNED,
        200: {"description": "Stored; ETag is the MD5"},
        403: {"description": f"{SIGNED[403]['description']}; or over a quota (nothing kept)"},
        409: {"description": "The object is no longer UPLOADING"},
    },
    openapi_extra={"requestBody": {"required": True, "content": BLOB_RESPONSES[200]["content"]}},
)
async def put_blob(
    grant: Annotated[Grant, signed_for("PUT")], request: Request, stowage: StowageDep
) -> Response:
    """Receive the raw bytes of an UPLOADING object; hashed and fsynced before 200."""
    ticket = await stowage.objects.upload_target(grant)
    async with stowage.uploads.hold(creator_caller(ticket.obj)):
        body = request_body(request)
        obj = await stowage.objects.upload(ticket, body, declared_length(request))
    return Response(status_code=200, headers={"ETag": f'"{obj.md5}"'})


READ: dict[str, Any] = {"response_class": Response, "responses": {**SIGNED, **BLOB_RESPONSES}}


@router.get("/{object_id}", **READ)
@router.head("/{object_id}", **READ)
async def get_blob(
    grant: Annotated[Grant, signed_for("GET")], request: Request, stowage: StowageDep
) -> Response:
    """Stream a completed object's bytes; supports Range, If-None-Match, If-Match, If-Range."""
    try:
        obj = await stowage.objects.signed_download(grant)
    except (Gone, Invalid):
        raise NotFound("Object not found") from None
    return await blob_response(request, stowage.objects, obj, MIME_TYPES[obj.content_type])
