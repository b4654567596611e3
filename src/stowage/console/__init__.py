"""The web console at ``/console``, described to the server as a dialect is."""

from ..api.common.dialect import Dialect
from . import routes

SURFACE = Dialect(name="console", routers=(routes.router,), uploads=(("POST", "/console/upload"),))
