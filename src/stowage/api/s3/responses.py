"""S3's responses: XML documents, and errors as ``<Error>`` bodies."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from starlette.responses import Response

from .errors import S3Error
from .requests import S3Request
from .xml import document, element

XML = "application/xml"


def xml_response(
    root: str, children: Iterable[str], status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(document(root, children), status_code=status, headers=headers, media_type=XML)


def error_response(exc: S3Error, request: S3Request, request_id: str) -> Response:
    """The error as S3 sends it; a HEAD's answer has the status and no body, as S3's."""
    if request.method == "HEAD":
        return Response(status_code=exc.status, headers={"x-amz-error-code": exc.code})
    children = [element("Code", exc.code), element("Message", exc.message)]
    children += [element(name, value) for name, value in exc.extra.items()]
    children += [element("Resource", request.resource), element("RequestId", request_id)]
    return Response(
        document("Error", children, namespaced=False), status_code=exc.status, media_type=XML
    )
