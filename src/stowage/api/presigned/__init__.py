"""The presigned blob URLs (``/blobs/{id}``) that Runloop's ``upload_url`` and
``download_url`` and the console's share links point at: the signature is the credential."""

from ..common.dialect import Dialect
from ..common.errors import domain_response
from . import hot, routes

DIALECT = Dialect(
    name="presigned",
    routers=(routes.router,),
    error_response=domain_response,
    uploads=(("PUT", "/blobs/{object_id}"),),
    hot=hot.hot_route,
    tags=frozenset({"presigned"}),
)
