"""Benchmark: a simulated call's injection → the CRM page's ``set_notif_in`` callback.

Run::

    .venv/bin/python bench/crm_latency.py [--operators 50] [--rates 5,10,20] [--seconds 20]

As ``bench/banner_latency.py`` (see there: the account, the server, the rates, the callers
hanging up after ``--ring`` seconds), but each of the ``--operators`` pages is a CRM page on
another origin (``http://localhost:<port>``, served by this script) holding the banner's
iframe (``engine=standard&version=1``) and ``cnx.js`` from the server, logged in with
``crm.login(token)``. The page's ``set_notif_in`` callback notes when it was called; latency =
that time minus the time the call's request was sent. The path measured is the whole of
guide §4: simulated switch → routing → event stream → banner → postMessage → cnx.js → the
CRM's callback.

Goal (issue): p99 ≤ 100 ms with 50 CRM pages. A benchmark never gates: missing it exits 0.
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from playwright.sync_api import Browser, Page

from _page_latency import parser, run
from _support import free_port

CRM_PORT = free_port()
CRM_ORIGIN = f"http://localhost:{CRM_PORT}"


def crm_page(base: str) -> bytes:
    return f"""<!doctype html><title>CRM</title>
<iframe width="360" height="640"
        src="{base}/operateurs/index.htm?engine=standard&version=1&sound=off"></iframe>
<script src="{base}/cnx.js"></script>
<script>
window.__vmShown = {{}};
crm.set_notif_in(function (call) {{
  window.__vmShown[call.id_call] = performance.timeOrigin + performance.now();
}});
crm.login(new URLSearchParams(location.search).get("token")).then(function () {{
  window.__vmLoggedIn = true;
}});
</script>""".encode()


def serve_crm(base: str) -> ThreadingHTTPServer:
    page = crm_page(base)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", CRM_PORT), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def open_crm_pages(browser: Browser, base: str, tokens: list[str]) -> list[Page]:
    serve_crm(base)
    pages = []
    for token in tokens:
        context = browser.new_context(viewport={"width": 1000, "height": 700})
        page = context.new_page()
        page.goto(f"{CRM_ORIGIN}/crm?token={json.dumps(token)[1:-1]}")
        pages.append(page)
    for page in pages:
        page.wait_for_function("window.__vmLoggedIn === true", timeout=60_000)
    return pages


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__.split("\n", 1)[0] if __doc__ else "").parse_args(argv)
    what = "CRM callback latency: simulated call injected → set_notif_in in the CRM page"
    return run(args, what, open_crm_pages, origins=[CRM_ORIGIN])


if __name__ == "__main__":
    sys.exit(main())
