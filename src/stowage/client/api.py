"""The CLI client's view of a stowage server: both dialects, each where it fits.

Uploads without a namespace, lists, details, deletes and share links use the Runloop
dialect (it has TTLs, metadata and presigned URLs, and its upload URL goes straight to S3
in scale-out mode). Uploads into a namespace use Djinn's, the only one with namespaces.
Downloads use Djinn's ``GET /objects/{id}``, which takes either kind of id.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from .config import Login


class ClientError(Exception):
    """A failure that fits on one line for the user; the CLI exits 1 with it."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _describe(response: httpx.Response, what: str) -> str:
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    if status == 401:
        return "the server refused the token (unknown, revoked or mistyped)"
    if status == 404:
        return f"{what}: not found (or not visible to this token)"
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return f"{what}: {body['message']} ({status})"
    if isinstance(body, dict):  # Djinn's {"field": ["Msg", ...]}
        fields = "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in body.items())
        return f"{what}: {fields} ({status})"
    return f"{what}: HTTP {status}"


class StowageClient:
    def __init__(self, login: Login, timeout_s: float = 60) -> None:
        self.url = login.url
        timeout = httpx.Timeout(timeout_s, connect=5)
        auth = {"Authorization": f"Bearer {login.token}"}
        self._api = httpx.Client(base_url=login.url, headers=auth, timeout=timeout)
        # Presigned URLs carry their own credential; a bearer header would break S3's.
        self._signed = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._api.close()
        self._signed.close()

    def __enter__(self) -> StowageClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _send(self, client: httpx.Client, request: httpx.Request, what: str) -> httpx.Response:
        try:
            response = client.send(request, stream=True)
        except httpx.TransportError as exc:
            raise ClientError(f"cannot reach {self.url}: {exc}") from None
        if response.status_code >= 400:
            response.read()
            response.close()
            raise ClientError(_describe(response, what), response.status_code)
        return response

    def _call(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        response = self._send(self._api, self._api.build_request(method, path, **kwargs), what)
        body = response.read()
        response.close()
        return response.json() if body else None

    # --- who -------------------------------------------------------------------------

    def whoami(self) -> str:
        self._call("GET", "/v1/objects/metadata/keys", "checking the token")
        return self._call("GET", "/user", "reading the user")["username"]

    # --- objects ---------------------------------------------------------------------

    def create(
        self, name: str, content_type: str, metadata: dict[str, str], ttl_ms: int | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "content_type": content_type}
        if metadata:
            body["metadata"] = metadata
        if ttl_ms is not None:
            body["ttl_ms"] = ttl_ms
        return self._call("POST", "/v1/objects", f"creating {name}", json=body)

    def put_bytes(self, upload_url: str, chunks: Iterable[bytes], size: int) -> None:
        headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream"}
        request = self._signed.build_request("PUT", upload_url, content=chunks, headers=headers)
        self._send(self._signed, request, "uploading").close()

    def complete(self, object_id: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/objects/{object_id}/complete", f"completing {object_id}")

    def store_in_namespace(
        self, name: str, namespace: str, chunks: Iterable[bytes], size: int
    ) -> dict[str, Any]:
        return self._call(
            "POST",
            "/objects",
            f"uploading {name}",
            params={"name": name, "namespace": namespace},
            content=chunks,
            headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"},
        )

    def retrieve(self, ref: str) -> dict[str, Any]:
        """The Runloop view (state, metadata, expiry) of either kind of id."""
        return self._call("GET", f"/v1/objects/{self.public_id(ref)}", f"object {ref}")

    def details(self, ref: str) -> dict[str, Any] | None:
        """The Djinn view (hashes, namespace), or None while the object is not complete."""
        try:
            return self._call("GET", f"/objects/{ref}", f"object {ref}")
        except ClientError as exc:
            if exc.status == 404:
                return None
            raise

    def public_id(self, ref: str) -> str:
        """``obj_…`` for either kind of id (Djinn's numeric ids name only complete objects)."""
        if not ref.isdigit():
            return ref
        return self._call("GET", f"/objects/{ref}", f"object {ref}")["object_id"]

    @contextmanager
    def download(self, ref: str) -> Iterator[tuple[httpx.Response, int | None]]:
        """The object's bytes as a streamed response, and their length when known."""
        request = self._api.build_request(
            "GET", f"/objects/{ref}", headers={"Accept": "application/octet-stream"}
        )
        response = self._send(self._api, request, f"object {ref}")
        try:
            length = response.headers.get("content-length")
            yield response, int(length) if length else None
        finally:
            response.close()

    def list(self, search: str | None, limit: int) -> tuple[list[dict[str, Any]], bool]:
        """Newest first, up to ``limit``, following the cursor across pages."""
        found: list[dict[str, Any]] = []
        params: dict[str, Any] = {"include_total_count": "false"}
        if search:
            params["search"] = search
        while len(found) < limit:
            params["limit"] = min(limit - len(found), 1000)
            page = self._call("GET", "/v1/objects", "listing", params=params)
            found += page["objects"]
            if not page["has_more"] or not page["objects"]:
                return found, page["has_more"]
            params["starting_after"] = page["objects"][-1]["id"]
        return found, True

    def delete(self, ref: str) -> dict[str, Any]:
        public_id = self.public_id(ref)
        return self._call("POST", f"/v1/objects/{public_id}/delete", f"deleting {ref}")

    def share(self, ref: str, seconds: int) -> str:
        public_id = self.public_id(ref)
        params = {"duration_seconds": seconds}
        path = f"/v1/objects/{public_id}/download"
        return self._call("GET", path, f"sharing {ref}", params=params)["download_url"]
