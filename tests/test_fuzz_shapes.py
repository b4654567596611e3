"""The shapes schemathesis never generates, against every route and parameter of
``/openapi.json``: numbers too long for ``int()``, text that is not Unicode (lone
surrogates as JSON escapes and percent-encoded, bytes that are not UTF-8), and oversize
headers. On both backends, against ``stowage serve`` as it ships.

Every answer must be below 500, an error must carry a JSON body in its dialect's shape, the
server log must hold no traceback, and the keep-alive connection the request came on must
still work. Requests go one at a time over one raw connection (``rawhttp.KeepAlive``), so
a dropped connection is seen, not hidden by a client library reconnecting.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest

from .backends import BACKENDS
from .harness import ProcServer, proc_server_on
from .rawhttp import KeepAlive, RawReply, raw_request

HUGE = "9" * 4301  # one digit past what int() converts
# Percent-encoded, as they go into a URL or a form.
URL_SHAPES = [HUGE, "-" + HUGE, "%ED%A0%80", "a%ED%B3%BFb", "%FF", "%C0%AF"]
# Raw JSON values, as they go into a body.
JSON_SHAPES = [HUGE, "-" + HUGE, '"\\ud800"', '"a\\udfffb"', '{"\\ud800":"v"}', '["\\udc00"]']
RANGE_SHAPES = [
    f"bytes=0-{HUGE}",
    f"bytes={HUGE}-",
    f"bytes=-{HUGE}",
    f"bytes={HUGE}-{HUGE}",
    f"bytes=1-{HUGE}, 0-{HUGE}",
    "bytes=\xb2-\xb3",  # isdigit() says yes, int() says no
]
HEADER_CAP_BYTES = 64 * 1024  # STOWAGE_MAX_HEADER_BYTES: a request head past it gets 431
HEADER_BYTES = [8 * 1024, 60 * 1024, 128 * 1024]
# Values for the fields and parameters not being fuzzed, so each request gets past them.
BASE_FIELDS = {"name": "fuzzed", "content_type": "text", "handle": "nobody"}
MAX_REQUESTS = 2000


@dataclass
class Target:
    """The live things the baseline values point at."""

    djinn_id: str
    public_id: str
    presigned: dict[str, str]
    token: str

    def path_value(self, template: str, name: str) -> str:
        if name == "object_id":
            return self.djinn_id if template.startswith("/objects") else self.public_id
        values = {"key": "k", "username": "admin", "path": "ns", "collaborator": "bob"}
        return values.get(name, "1")


@dataclass
class Case:
    method: str
    template: str
    path: dict[str, str]
    query: dict[str, str]
    headers: dict[str, str | bytes]
    body: bytes = b""

    @property
    def label(self) -> str:
        return f"{self.method} {self.template} {self.path} {self.query} {self.body[:60]!r}"[:300]

    def target(self) -> str:
        url = self.template
        for name, value in self.path.items():
            url = url.replace("{" + name + "}", value)
        if self.query:  # the values are already percent-encoded, or plain digits
            url += "?" + "&".join(f"{k}={v}" for k, v in self.query.items())
        return url


def _schema(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:
        return spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return schema


def cases(spec: dict[str, Any], target: Target) -> Iterator[Case]:
    auth = {"Authorization": f"Bearer {target.token}"}
    for template, operations in spec["paths"].items():
        for method, operation in operations.items():
            params = operation.get("parameters", [])
            path = {
                p["name"]: target.path_value(template, p["name"])
                for p in params
                if p["in"] == "path"
            }
            query = {
                p["name"]: BASE_FIELDS.get(p["name"], "x")
                for p in params
                if p["in"] == "query" and p.get("required")
            }
            if template.startswith("/blobs/"):
                query |= target.presigned
            content = operation.get("requestBody", {}).get("content", {})
            raw = (
                b"data" if content and not any("json" in c or "form" in c for c in content) else b""
            )
            base = Case(method.upper(), template, path, query, dict(auth), raw)
            for param in params:
                for shape in URL_SHAPES:
                    if param["in"] == "header":  # sent as is: a header is no URL
                        yield _with(base, headers={**base.headers, param["name"]: shape})
                        continue
                    where = base.path if param["in"] == "path" else base.query
                    yield _with(base, **{param["in"]: {**where, param["name"]: shape}})
            yield from _body_cases(spec, base, content)
            if "206" in operation.get("responses", {}):
                for spec_range in RANGE_SHAPES:
                    headers = {
                        "Accept": "application/octet-stream",
                        "Range": spec_range.encode("latin-1"),
                    }
                    yield _with(base, headers={**base.headers, **headers})


def _body_cases(spec: dict[str, Any], base: Case, content: dict[str, Any]) -> Iterator[Case]:
    for media, body in content.items():
        schema = _schema(spec, body.get("schema", {}))
        names = list(schema.get("properties", {}))
        required = {n: BASE_FIELDS.get(n, "x") for n in schema.get("required", [])}
        for name in names:
            others = {k: v for k, v in required.items() if k != name}
            headers = {**base.headers, "Content-Type": media}
            if media == "application/json":
                for shape in JSON_SHAPES:
                    fields = [f'"{k}":"{v}"' for k, v in others.items()] + [f'"{name}":{shape}']
                    yield _with(base, headers=headers, body=("{" + ",".join(fields) + "}").encode())
            elif media == "application/x-www-form-urlencoded":
                for shape in URL_SHAPES:
                    form = urlencode(others) + ("&" if others else "") + f"{name}={shape}"
                    yield _with(base, headers=headers, body=form.encode())


def _with(base: Case, **changes: Any) -> Case:
    return Case(**{**base.__dict__, **changes})


def check(case: Case, reply: RawReply) -> None:
    assert reply.status < 500, (case.label, reply.status, reply.body[:300])
    if reply.status < 400 or case.method == "HEAD" or reply.status == 416:
        return
    assert reply.headers.get("content-type", "").startswith("application/json"), case.label
    body = reply.json()
    dialect = isinstance(body, dict) and (
        isinstance(body.get("message"), str)
        or (
            body
            and all(
                isinstance(v, list) and all(isinstance(m, str) for m in v) for v in body.values()
            )
        )
    )
    assert dialect, (case.label, body)


def prepare(server: ProcServer) -> Target:
    """A namespace, a Djinn object in it, and a completed Runloop object with a presigned
    download URL (stowage's own in local mode; the bucket's in S3 mode, so /blobs only sees
    unsigned requests there)."""
    auth = {"Authorization": f"Bearer {server.token}"}
    with httpx.Client(base_url=server.base_url, headers=auth, timeout=30) as c:
        djinn = c.post("/objects", params={"name": "base.txt", "namespace": "ns"}, content=b"hello")
        obj = c.get(f"/objects/{djinn.json()['id']}").json()
        url = c.get(f"/v1/objects/{obj['object_id']}/download").json()["download_url"]
    presigned = dict(parse_qsl(urlsplit(url).query)) if url.startswith(server.base_url) else {}
    return Target(str(obj["id"]), obj["object_id"], presigned, server.token)


@pytest.mark.parametrize("backend", BACKENDS)
def test_shapes_schemathesis_never_sends_get_a_clean_4xx_everywhere(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    pg_base_url: str | None,
) -> None:
    with proc_server_on(backend, request, tmp_path_factory, pg_base_url) as server:
        target = prepare(server)
        spec = httpx.get(f"{server.base_url}/openapi.json").json()
        tried = 0
        with KeepAlive(server.base_url) as connection:
            for case in cases(spec, target):
                check(case, connection.request(case.method, case.target(), case.headers, case.body))
                tried += 1
                assert tried <= MAX_REQUESTS
            assert connection.request("GET", "/healthz").status == 200
        for size in HEADER_BYTES:
            for case in header_cases(spec, target, size):
                reply = raw_request(
                    server.base_url, case.method, case.target(), headers=case.headers
                )
                if size > HEADER_CAP_BYTES:
                    assert reply is not None and reply.status == 431, (case.label, reply)
                assert reply is None or reply.status < 500, (case.label, reply)
                tried += 1
            assert httpx.get(f"{server.base_url}/healthz").status_code == 200
        log = server.log_path.read_text()
        # still there: the object the baseline values point at
        with httpx.Client(
            base_url=server.base_url, headers={"Authorization": f"Bearer {server.token}"}
        ) as c:
            assert c.get(f"/objects/{target.djinn_id}").status_code == 200
    assert tried > 400, tried  # every route and parameter, several shapes each
    assert "Traceback" not in log and "unhandled error" not in log, log[-4000:]


def header_cases(spec: dict[str, Any], target: Target, size: int) -> Iterator[Case]:
    """An oversize header on every GET route (safe to repeat): only "no 5xx, and the
    server still answers" is asserted, whatever a server does with them."""
    for template, operations in spec["paths"].items():
        if "get" not in operations:
            continue
        path = {
            p["name"]: target.path_value(template, p["name"])
            for p in operations["get"].get("parameters", [])
            if p["in"] == "path"
        }
        headers: dict[str, str | bytes] = {
            "Authorization": f"Bearer {target.token}",
            "X-Fuzz": "a" * size,
        }
        yield Case("GET", template, path, {}, headers)
