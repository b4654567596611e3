"""The web console in a real browser: Playwright driving Debian's chromium, headless,
against a live server on each backend. Screenshots of each page go to tests/artifacts/."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from .harness import ProcServer

ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM_FLAGS = [  # no sandbox as root; no calls home on this closed network
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")  # not longer: sync Playwright holds an event loop open
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is needed (make test installs it: apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, proc_server: ProcServer, tmp_path: Path) -> Iterator[Page]:
    context = browser.new_context(base_url=proc_server.base_url, accept_downloads=True)
    opened = context.new_page()
    yield opened
    context.close()


def shot(page: Page, server: ProcServer, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    backend = "s3" if "STOWAGE_BLOB_STORE" in server.env else "local"
    page.screenshot(path=ARTIFACTS / f"console-{backend}-{name}.png", full_page=True)


def sign_in(page: Page, token: str) -> None:
    page.goto("/console")
    page.fill("#token", token)
    page.click("button[type=submit]")


def test_a_wrong_token_is_refused_with_a_message(page: Page, proc_server: ProcServer) -> None:
    sign_in(page, "stw_this-is-not-a-token")
    expect(page.get_by_role("alert")).to_contain_text("not accepted")
    assert page.url.endswith("/console/login")
    shot(page, proc_server, "login-refused")


def test_upload_list_download_share_delete(
    page: Page, proc_server: ProcServer, tmp_path: Path
) -> None:
    sign_in(page, proc_server.token)
    expect(page.get_by_role("heading", name="Objects")).to_be_visible()
    shot(page, proc_server, "objects")

    name = f"console-{os.urandom(4).hex()}.bin"
    data = os.urandom(3 * 1024 * 1024 + 5)  # more than the 1 MiB cap on non-upload bodies
    (tmp_path / name).write_bytes(data)
    page.set_input_files("#files", tmp_path / name)  # the file picker beside the drop zone
    # The page lists each upload with its progress bar, then reloads the list.
    expect(page.get_by_role("link", name=name)).to_be_visible()
    shot(page, proc_server, "uploaded")

    dropped = f"dropped-{os.urandom(4).hex()}.txt"
    transfer = page.evaluate_handle(
        """name => { const dt = new DataTransfer();
                     dt.items.add(new File(["dropped by the test"], name, {type: "text/plain"}));
                     return dt; }""",
        dropped,
    )
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    page.wait_for_url("**/console")
    expect(page.get_by_role("link", name=dropped)).to_be_visible()
    page.fill("input[name=q]", name)
    page.click("form.search button")
    expect(page.locator("table.objects tbody tr")).to_have_count(1)
    shot(page, proc_server, "search")

    page.get_by_role("link", name=name).click()
    expect(page.locator("#sha256")).to_have_text(hashlib.sha256(data).hexdigest())
    shot(page, proc_server, "details")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download").click()
    assert Path(download.value.path()).read_bytes() == data

    page.get_by_role("button", name="Make a share link").click()
    shared = page.locator("#share-link").input_value()
    assert httpx.get(shared).content == data  # no token, no cookie: the link is enough
    page.get_by_role("button", name="Copy link").click()
    expect(page.locator(".copied")).to_be_visible()
    shot(page, proc_server, "shared")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("status")).to_contain_text(f"Deleted {name}")
    expect(page.get_by_role("link", name=name)).to_have_count(0)
    shot(page, proc_server, "deleted")
    headers = {"Authorization": f"Bearer {proc_server.token}"}
    gone = httpx.get(f"{proc_server.base_url}/objects?search={name}", headers=headers)
    assert gone.json() == []


def test_namespaces_and_sign_out(page: Page, proc_server: ProcServer) -> None:
    headers = {"Authorization": f"Bearer {proc_server.token}"}
    path = f"console{os.urandom(3).hex()}"
    put = httpx.post(
        f"{proc_server.base_url}/objects",
        params={"name": f"{path}.txt", "namespace": f"{path}/nightly"},
        content=b"in a namespace",
        headers=headers,
    )
    assert put.status_code == 201
    sign_in(page, proc_server.token)
    page.get_by_role("link", name="Namespaces").click()
    page.get_by_role("link", name=f"{path}/nightly").click()
    expect(page.get_by_role("link", name=f"{path}.txt")).to_be_visible()
    shot(page, proc_server, "namespace")
    page.get_by_role("button", name="Sign out").click()
    page.goto("/console")
    assert page.url.endswith("/console/login")


def test_search_results_page_by_page(page: Page, proc_server: ProcServer) -> None:
    tag = f"paged{os.urandom(3).hex()}"
    headers = {"Authorization": f"Bearer {proc_server.token}"}
    with httpx.Client(base_url=proc_server.base_url, headers=headers) as c:
        for i in range(27):
            made = c.post("/objects", params={"name": f"{tag}-{i:02}.txt"}, content=b"p")
            assert made.status_code == 201
    sign_in(page, proc_server.token)
    page.goto(f"/console?q={tag}")
    rows = page.locator("table.objects tbody tr")
    expect(rows).to_have_count(25)
    expect(rows.first).to_contain_text(f"{tag}-26.txt")  # newest first
    page.get_by_role("link", name="Older →").click()
    expect(rows).to_have_count(2)
    expect(rows.last).to_contain_text(f"{tag}-00.txt")
    shot(page, proc_server, "page-2")
    page.get_by_role("link", name="← Newer").click()
    expect(rows).to_have_count(25)


def test_posts_without_the_csrf_value_are_refused(proc_server: ProcServer) -> None:
    """A page on another site cannot make a signed-in browser delete or upload."""
    cookies = {"stowage_console": proc_server.token}
    with httpx.Client(base_url=proc_server.base_url, cookies=cookies) as c:
        upload = c.post("/console/upload", params={"name": "x.txt"}, content=b"x")
        assert upload.status_code == 401
        forged = c.post(
            "/console/logout", data={"csrf": "0" * 40}, headers={"Origin": "https://evil.test"}
        )
        assert forged.status_code == 303 and forged.headers["location"] == "/console/login"
        assert c.get("/console/objects/obj_x").status_code in (303, 404)
