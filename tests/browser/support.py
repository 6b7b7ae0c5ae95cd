"""Real-browser test support: headless Debian Chromium under Playwright, a CRM on another
origin, and a loopback TCP proxy that can drop a page's connections."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright

from tests.support import IN_CI, free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # tests run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # nothing may leave the machine
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


def launch(playwright: Playwright) -> Browser:
    if shutil.which(CHROMIUM) is None:
        message = f"{CHROMIUM} is missing (Debian package chromium; make test installs it)"
        if IN_CI:
            pytest.fail(message + " — CI=true: browser tests must run")
        pytest.skip(message)
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def eventually(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def banner_url(base: str, token: str | None = None, **params: str) -> str:
    query = {"sound": "off", **params}
    if token is not None:
        query["token_session"] = token
    return f"{base}/operateurs/index.htm?" + httpx.QueryParams(query).__str__()


def open_banner(page: Page, url: str) -> Page:
    """Load the banner and wait until it is logged in and live."""
    page.goto(url)
    page.wait_for_selector("#conn[data-state=live]")
    return page


# --- a CRM on another origin ---------------------------------------------------------------


@dataclass
class CrmSite:
    """A web server playing an integrator's CRM: pages by path, and every request it got."""

    port: int
    pages: dict[str, str] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def url(self, path: str, host: str = "localhost") -> str:
        return f"http://{host}:{self.port}{path}"

    @property
    def origin(self) -> str:
        return f"http://localhost:{self.port}"


@contextmanager
def crm_site() -> Iterator[CrmSite]:
    site = CrmSite(free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            site.requests.append(self.path)
            body = site.pages.get(urlsplit(self.path).path)
            if body is None:
                body = "<!doctype html><title>CRM</title><p>customer file</p>"
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", site.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- a proxy that can drop connections -------------------------------------------------------


class DroppingProxy:
    """Forwards 127.0.0.1:port to the server; ``drop()`` cuts every open connection, and
    while ``down`` new connections are closed at once, as a broken network would."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.target_port = target_port
        self.down = False
        self.stalled = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
            self._ready.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self._server.serve_forever()

        asyncio.run(main())

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.transport.abort()
            return
        if self.stalled:  # accepted, then never answered: a server that hangs
            self._writers.add(writer)
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while await reader.read(65536):
                    pass
            self._writers.discard(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.difference_update((writer, up_writer))

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(5)

    def drop(self, *, stay_down: bool) -> None:
        """Cut every connection now; with ``stay_down`` refuse new ones until ``restore``."""
        assert self._loop is not None
        self.down = stay_down

        def cut() -> None:
            for writer in list(self._writers):
                writer.transport.abort()

        self._loop.call_soon_threadsafe(cut)

    def stall(self) -> None:
        """Cut every connection; new ones are accepted but never answered until ``restore``."""
        self.stalled = True
        self.drop(stay_down=False)

    def restore(self) -> None:
        self.down = False
        self.stalled = False

    def stop(self) -> None:
        if self._loop is not None and self._server is not None:
            self.drop(stay_down=True)
            self._loop.call_soon_threadsafe(self._server.close)
            for task in asyncio.all_tasks(self._loop):
                self._loop.call_soon_threadsafe(task.cancel)
        self._thread.join(timeout=5)


@contextmanager
def dropping_proxy(target_port: int) -> Iterator[DroppingProxy]:
    proxy = DroppingProxy(target_port)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
