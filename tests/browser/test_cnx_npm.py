"""The npm package @voicemgmt/cnx as an integrator uses it: packed with ``npm pack``, installed
from its tarball into a throwaway CRM project with esbuild and TypeScript from the npm registry
(``scripts/cnx-npm-crm.sh``), the page bundled, served on its own origin
(``http://localhost:<crm>``) and run in headless Chromium beside the banner of a real server
(``http://127.0.0.1:<server>``)."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import eventually
from tests.support import IN_CI, LiveServer, SeededAccount, free_port, token_for

ROOT = Path(__file__).resolve().parents[2]
MAKE_PROJECT = ROOT / "scripts" / "cnx-npm-crm.sh"
CALLER = "33612345678"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CRM project, packed package installed and page bundled (once for this module)."""
    if shutil.which("npm") is None:
        message = "npm is missing (Debian packages nodejs and npm; make test installs them)"
        if IN_CI:
            pytest.fail(message + " — CI=true: the npm package must be tested")
        pytest.skip(message)
    directory = tmp_path_factory.mktemp("npm-crm")
    made = subprocess.run(
        [MAKE_PROJECT, str(directory)], capture_output=True, text=True, timeout=600
    )
    assert made.returncode == 0, made.stdout + made.stderr
    return directory


@contextmanager
def static_site(directory: Path) -> Iterator[str]:
    """``directory`` served over HTTP on loopback; yields its origin, http://localhost:<port>."""
    port = free_port()

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(
        ("127.0.0.1", port), functools.partial(Handler, directory=str(directory))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def crm(project: Path, server: LiveServer, acme: SeededAccount) -> Iterator[str]:
    """The bundled CRM's origin, one of the account's allowed origins."""
    with static_site(project / "public") as origin:
        with server.client() as client:
            answer = client.patch(
                "/api/v1/account", auth=acme.auth, json={"allowed_origins": [origin]}
            )
            assert answer.status_code == 200, answer.text
        yield origin


def call_in(server: LiveServer, account: SeededAccount) -> str:
    with server.client() as client:
        answer = client.post(
            "/api/v1/sim/calls", auth=account.auth, json={"from": CALLER, "to": account.number}
        )
    assert answer.status_code == 201, answer.text
    call_id: str = answer.json()["id_call"]
    return call_id


def seen(page: Page, kind: str) -> list[dict[str, Any]]:
    notices: list[dict[str, Any]] = page.evaluate("window.seen")
    return [n["data"] for n in notices if n["kind"] == kind]


def test_a_bundled_crm_page_importing_the_package_hears_of_the_offered_call(
    page: Page, server: LiveServer, acme: SeededAccount, crm: str
) -> None:
    token = token_for(server, acme, id_agent=acme.id_agent)
    query = httpx.QueryParams({"vm": server.base_url, "token": token})
    page.goto(f"{crm}/index.html?{query}")
    expect(page.locator("#operator")).to_have_text(str(acme.id_agent), timeout=10_000)
    expect(page.locator("#status")).to_have_text("online", timeout=10_000)
    call_id = call_in(server, acme)
    expect(page.locator("#customer")).to_have_text(CALLER, timeout=10_000)
    assert seen(page, "in") == [
        {
            "id_session": token,
            "e164_in": acme.number,
            "id_call": call_id,
            "caller_id_num": CALLER,
            "id_op": acme.id_agent,
            "id_groupe": acme.id_group,
            "wait": 0,
        }
    ]
    assert page.evaluate("window.vm.origin") == server.base_url
    assert page.evaluate("typeof window.crm") == "undefined"  # the module sets no global


def test_a_banner_in_a_shadow_root_is_handed_to_create_crm(
    page: Page, server: LiveServer, acme: SeededAccount, crm: str
) -> None:
    token = token_for(server, acme, id_agent=acme.id_agent)
    query = httpx.QueryParams({"vm": server.base_url, "token": token, "shadow": "1"})
    page.goto(f"{crm}/index.html?{query}")
    assert page.evaluate("document.getElementsByTagName('iframe').length") == 0
    expect(page.locator("#status")).to_have_text("online", timeout=10_000)
    call_id = call_in(server, acme)
    expect(page.locator("#customer")).to_have_text(CALLER, timeout=10_000)
    assert [call["id_call"] for call in seen(page, "in")] == [call_id]


def test_the_packages_script_build_is_the_served_cnx_js_and_works_from_the_crms_origin(
    page: Page, project: Path, server: LiveServer, acme: SeededAccount, crm: str
) -> None:
    packaged = project / "node_modules" / "@voicemgmt" / "cnx" / "dist" / "cnx.js"
    with server.client() as client:
        served = client.get("/cnx.js")
    assert served.status_code == 200
    assert packaged.read_bytes() == served.content
    # The integrator copies the script build to their own assets and names the server.
    (project / "public" / "vendor").mkdir(exist_ok=True)
    shutil.copy(packaged, project / "public" / "vendor" / "cnx.js")
    frame = f"{server.base_url}/operateurs/index.htm?engine=standard&version=1&sound=off"
    (project / "public" / "script.html").write_text(
        f"""<!doctype html><title>CRM</title>
<iframe src="{frame}" width="360" height="640"></iframe>
<script src="vendor/cnx.js" data-server="{server.base_url}"></script>
<script>
  window.seen = [];
  crm.set_notif_in(function (call) {{ seen.push({{kind: "in", data: call}}); }});
  crm.login({json.dumps(token_for(server, acme, id_agent=acme.id_agent))})
    .then(function () {{ return crm.publish({{status: "online"}}); }})
    .then(function (value) {{ seen.push({{kind: "published", data: value}}); }});
</script>"""
    )
    page.goto(f"{crm}/script.html")
    eventually(lambda: seen(page, "published"))
    call_id = call_in(server, acme)
    incoming = eventually(lambda: seen(page, "in"))
    assert [call["id_call"] for call in incoming] == [call_id]
    assert page.evaluate("crm.origin") == server.base_url


def test_the_packed_package_holds_its_builds_types_readme_and_manifest(
    project: Path,
) -> None:
    installed = project / "node_modules" / "@voicemgmt" / "cnx"
    files = {str(path.relative_to(installed)) for path in installed.rglob("*") if path.is_file()}
    assert files == {
        "package.json",
        "README.md",
        "dist/cnx.js",
        "dist/cnx.mjs",
        "dist/cnx.d.ts",
        "dist/cnx.global.d.ts",
    }
    manifest = json.loads((installed / "package.json").read_text())
    assert manifest["exports"]["."]["import"] == "./dist/cnx.mjs"


def test_the_packages_types_check_a_typescript_crm(project: Path) -> None:
    # src/usage.ts and src/script.ts; their @ts-expect-error lines fail if the types go loose.
    checked = subprocess.run(
        ["npm", "run", "--silent", "typecheck"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
