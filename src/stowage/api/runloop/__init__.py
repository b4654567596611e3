"""The Runloop-compatible Objects API (``/v1/objects``)."""

from ..common.dialect import Dialect
from ..common.errors import domain_response
from . import hot, routes

DIALECT = Dialect(
    name="runloop",
    routers=(routes.router,),
    error_response=domain_response,
    hot=hot.hot_route,
    tags=frozenset({"runloop"}),
    auth_statuses={
        401: "Missing, unknown or revoked bearer token",
        403: "The token lacks the scope this call needs, or a quota refuses the write",
    },
)
