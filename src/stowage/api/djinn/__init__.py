"""The Djinn-CI-compatible API (``/objects``, ``/namespaces``, ``/n/…``, ``/invites``,
``/user``), served at the root and again under ``/api``."""

from ..common.dialect import Dialect
from . import absent, hot, namespaces, objects
from .errors import djinn_error

FIELD_ERRORS = {
    "type": "object",
    "description": 'Djinn validation errors by field: {"name": ["Name field required"]}',
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
}

DIALECT = Dialect(
    name="djinn",
    routers=(objects.router, namespaces.router, absent.router),
    prefixes=("", "/api"),
    error_response=djinn_error,
    uploads=(("POST", "/objects"),),
    hot=hot.hot_route,
    tags=frozenset({"djinn", "djinn namespaces"}),
    auth_statuses={404: "Absent, not visible to this token, or a bad token: always Not Found"},
    error_schemas={
        400: {
            "anyOf": [
                {"$ref": "#/components/schemas/FieldErrors"},
                {"$ref": "#/components/schemas/Message"},
            ]
        }
    },
    components={"FieldErrors": FIELD_ERRORS},
    # Djinn words an oversized file as a field error: a 400, never a 413.
    uploads_refuse_as_400=(("POST", "/objects"),),
)
