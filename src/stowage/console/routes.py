"""The web console at ``/console``: another thin adapter over the same core.

Server-rendered pages (Jinja2) with one small script for drag-and-drop uploads with a
progress bar, delete confirmation and copying share links; no build step, nothing from a
CDN. Signed in with an API token (``session``), so it can do what that token can.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Request
from fastapi.templating import Jinja2Templates
from starlette.responses import RedirectResponse, Response

from ..api.common.deps import StowageDep, declared_length, request_body
from ..api.common.errors import STATUS
from ..api.common.links import download_link
from ..api.common.requests import StrictRoute
from ..api.common.responses import JsonResponse, blob_response
from ..core.access import Principal
from ..core.errors import StowageError, Unauthenticated
from ..core.limits import token_caller
from ..core.models import ObjectQuery, ObjectState, StoredObject
from ..core.objects import ANY_NAMES
from ..core.retention import format_duration
from ..display import size_text, utc_minute
from ..numbers import page_number
from ..service import Stowage
from . import session

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")
PAGE_SIZE = 25
SHARE_CHOICES = {"1 hour": 3600, "1 day": 86400, "7 days": 7 * 86400}


class NotSignedIn(Exception):
    pass


class ConsoleRoute(StrictRoute):
    """Pages answer failures with a page: sign-in for a missing or dead session, an error
    page with the message otherwise."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except NotSignedIn:
                response = RedirectResponse("/console/login", status_code=303)
                session.forget(response)
                return response
            except StowageError as exc:
                status = STATUS.get(type(exc), 400)
                context = {"message": exc.message, "status": status}
                return page(request, "error.html", context, status_code=status)

        return run


router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)


def page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    return templates.TemplateResponse(request, name, context, status_code=status_code)


async def signed_in(request: Request, stowage: Stowage) -> tuple[Principal, str]:
    token = request.cookies.get(session.COOKIE)
    if not token:
        raise NotSignedIn
    try:
        return await stowage.access.authenticate(token), token
    except Unauthenticated:
        raise NotSignedIn from None


async def posted(request: Request, stowage: Stowage, csrf: str | None) -> tuple[Principal, str]:
    """The caller of a state-changing request (and their token), once its origin and CSRF
    value check out."""
    caller, token = await signed_in(request, stowage)
    if not session.same_origin(request) or not session.csrf_ok(
        request.app.state.console_csrf_key, token, csrf
    ):
        raise NotSignedIn
    return caller, token


def base_context(request: Request, caller: Principal, token: str) -> dict[str, Any]:
    return {
        "user": caller.user,
        "csrf": session.csrf_token(request.app.state.console_csrf_key, token),
    }


templates.env.filters["size"] = partial(size_text, missing="–")
templates.env.filters["utc"] = partial(utc_minute, missing="–")
templates.env.filters["duration"] = format_duration


@router.get("/login")
async def login_form(request: Request) -> Response:
    return page(request, "login.html", {})


@router.post("/login")
async def login(request: Request, stowage: StowageDep, token: str = Form("")) -> Response:
    if not session.same_origin(request):
        return page(request, "login.html", {"error": "Sign in from this page."}, 403)
    try:
        await stowage.access.authenticate(token.strip())
    except Unauthenticated:
        error = "That token was not accepted: it is unknown, revoked or mistyped."
        return page(request, "login.html", {"error": error}, 401)
    response = RedirectResponse("/console", status_code=303)
    session.remember(response, request, token.strip())
    return response


@router.post("/logout")
async def logout(request: Request, stowage: StowageDep, csrf: str = Form("")) -> Response:
    await posted(request, stowage, csrf)
    response = RedirectResponse("/console/login", status_code=303)
    session.forget(response)
    return response


def _pages(request: Request, page_no: int, has_more: bool) -> dict[str, str | None]:
    def link(number: int) -> str:
        params = {**request.query_params, "page": str(number)}
        return f"{request.url.path}?{urlencode(params)}"

    return {
        "prev": link(page_no - 1) if page_no > 1 else None,
        "next": link(page_no + 1) if has_more else None,
    }


@router.get("")
async def objects(request: Request, stowage: StowageDep, q: str = "") -> Response:
    caller, token = await signed_in(request, stowage)
    number = page_number(request.query_params.get("page"), PAGE_SIZE)
    query = ObjectQuery(
        viewer_id=caller.user.id,
        state=ObjectState.READ_ONLY,
        name=q.strip() or None,
        limit=PAGE_SIZE,
        offset=(number - 1) * PAGE_SIZE,
        include_total_count=False,
    )
    found = await stowage.objects.visible(caller, query)
    context = {
        **base_context(request, caller, token),
        "objects": found.objects,
        "q": q,
        "page_no": number,
        "pages": _pages(request, number, found.has_more),
        "deleted": request.query_params.get("deleted"),
        "title": "Objects",
        "usage": await stowage.quotas.usage(caller.user),
    }
    return page(request, "objects.html", context)


@router.get("/namespaces")
async def namespaces(request: Request, stowage: StowageDep, q: str = "") -> Response:
    caller, token = await signed_in(request, stowage)
    number = page_number(request.query_params.get("page"), PAGE_SIZE)
    found, total = await stowage.namespaces.visible(
        caller, q.strip() or None, (number - 1) * PAGE_SIZE, PAGE_SIZE
    )
    owners = await stowage.namespaces.users_by_ids({n.owner_id for n in found}, caller)
    rows = [(n, owners.get(n.owner_id)) for n in found]
    context = {
        **base_context(request, caller, token),
        "rows": rows,
        "q": q,
        "pages": _pages(request, number, number * PAGE_SIZE < total),
    }
    return page(request, "namespaces.html", context)


@router.get("/n/{username}/{path:namespace}")
async def namespace_objects(
    request: Request, username: str, path: str, stowage: StowageDep
) -> Response:
    caller, token = await signed_in(request, stowage)
    namespace = await stowage.namespaces.find(caller, username, path)
    number = page_number(request.query_params.get("page"), PAGE_SIZE)
    query = ObjectQuery(
        viewer_id=None,
        namespace_id=namespace.id,
        state=ObjectState.READ_ONLY,
        limit=PAGE_SIZE,
        offset=(number - 1) * PAGE_SIZE,
        include_total_count=False,
    )
    found = await stowage.objects.list_in(caller, namespace, query)
    context = {
        **base_context(request, caller, token),
        "objects": found.objects,
        "pages": _pages(request, number, found.has_more),
        "title": f"{username}/{path}",
        "in_namespace": True,
        "retention": namespace.retention,
    }
    return page(request, "objects.html", context)


async def _details(stowage: Stowage, obj: StoredObject, viewer: Principal) -> dict[str, Any]:
    namespaces = await stowage.namespaces.by_ids({obj.namespace_id} if obj.namespace_id else set())
    namespace = namespaces.get(obj.namespace_id) if obj.namespace_id else None
    owners = await stowage.namespaces.users_by_ids({obj.owner_id}, viewer)
    owner = owners.get(obj.owner_id)
    return {"obj": obj, "namespace": namespace, "owner": owner}


@router.get("/objects/{ref}")
async def object_page(request: Request, ref: str, stowage: StowageDep) -> Response:
    caller, token = await signed_in(request, stowage)
    obj = await stowage.objects.get(caller, ref)
    context = {
        **base_context(request, caller, token),
        **await _details(stowage, obj, caller),
        "share_choices": SHARE_CHOICES,
    }
    return page(request, "object.html", context)


@router.get("/objects/{ref}/download")
async def download(request: Request, ref: str, stowage: StowageDep) -> Response:
    caller, _ = await signed_in(request, stowage)
    obj = await stowage.objects.downloadable(caller, ref)
    return await blob_response(request, stowage.objects, obj, "application/octet-stream")


@router.post("/objects/{ref}/share")
async def share(
    request: Request,
    ref: str,
    stowage: StowageDep,
    csrf: str = Form(""),
    seconds: int = Form(3600),
) -> Response:
    caller, token = await posted(request, stowage, csrf)
    obj = await stowage.objects.downloadable(caller, ref)
    lifetime = seconds if seconds in SHARE_CHOICES.values() else 3600
    context = {
        **base_context(request, caller, token),
        **await _details(stowage, obj, caller),
        "share_choices": SHARE_CHOICES,
        "share_link": download_link(request, stowage, obj, lifetime),
        "share_seconds": lifetime,
    }
    return page(request, "object.html", context)


@router.post("/objects/{ref}/delete")
async def delete(request: Request, ref: str, stowage: StowageDep, csrf: str = Form("")) -> Response:
    caller, _ = await posted(request, stowage, csrf)
    gone = await stowage.objects.delete(caller, ref)
    return RedirectResponse(f"/console?deleted={quote(gone.name)}", status_code=303)


@router.post("/upload")
async def upload(request: Request, stowage: StowageDep, name: str = "") -> Response:
    """The page's script sends each dropped file here as the raw body, with progress."""
    try:
        caller, _ = await posted(request, stowage, request.headers.get("x-csrf-token"))
    except NotSignedIn:
        return JsonResponse({"message": "sign in again"}, status_code=401)
    try:
        async with stowage.uploads.hold(token_caller(caller.token_id)):
            body = request_body(request)
            done = await stowage.objects.put(
                caller, name, None, body, declared_length(request), ANY_NAMES
            )
    except StowageError as exc:
        return JsonResponse({"message": exc.message}, status_code=STATUS.get(type(exc), 400))
    return JsonResponse({"id": done.public_id, "url": f"/console/objects/{done.public_id}"})
