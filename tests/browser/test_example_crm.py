"""The newcomer's path: ``voicemgmt demo``, ``voicemgmt serve --demo-calls``, and the example CRM
(``/example/index.htm``) in headless Chromium: a demo call arrives and opens its customer file;
the same page served from another origin works too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.support import free_port
from voicemgmt.web.pages import STATIC_DIR

VOICEMGMT = str(Path(sys.executable).parent / "voicemgmt")


@dataclass(frozen=True)
class Demo:
    base: str
    credentials: dict[str, Any]
    output: Path


def environment(data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VM_")}
    env.update(
        VM_DATA_DIR=str(data_dir),
        VM_PORT=str(port),
        VM_LOG_LEVEL="warning",
        VM_ARGON2_TIME_COST="1",
        VM_ARGON2_MEMORY_KIB="8192",
        VM_ARGON2_PARALLELISM="1",
        VM_SIM_PROMPT_SECONDS="0.3",
        VM_SIM_DIGIT_INTERVAL="0.05",
    )
    return env


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    port = free_port()
    env = environment(tmp_path, port)
    seeded = subprocess.run(
        [VOICEMGMT, "demo", "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert seeded.returncode == 0, seeded.stderr
    output = tmp_path / "serve.log"
    with output.open("w") as log:
        server = subprocess.Popen(
            [VOICEMGMT, "serve", "--demo-calls", "1"], env=env, stdout=log, stderr=log
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, output.read_text()
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        yield Demo(base, json.loads(seeded.stdout), output)
    finally:
        server.terminate()
        server.wait(timeout=15)


def test_a_newcomer_watches_a_demo_call_arrive_in_the_example_crm(page: Page, demo: Demo) -> None:
    page.set_viewport_size({"width": 1280, "height": 900})
    url = demo.credentials["example_url"] + "&sound=off"
    assert url.startswith(f"{demo.base}/example/index.htm?token_session=vm_")
    page.goto(url)
    banner = page.frame_locator("#vm-banner")
    expect(banner.locator("#conn")).to_have_attribute("data-state", "live", timeout=15_000)
    expect(page.locator("#log")).to_contain_text("set_notif_status")
    page.click('[data-status="online"]')
    expect(page.locator("#status")).to_have_text("online")
    # A demo caller rings within seconds, goes through the IVR and reaches the operator.
    expect(page.locator("#log")).to_contain_text("set_notif_in", timeout=30_000)
    expect(page.locator("#file")).to_be_visible()
    phone = page.locator("#file").get_attribute("data-phone")
    customers = {"33612345678", "33611223344", "33699887766", "14155550123"}
    if phone in customers:  # the CRM opens that customer's file
        expect(page.locator(f'.customers li[data-phone="{phone}"]')).to_have_attribute(
            "aria-current", "true"
        )
    else:  # the demo's one caller the CRM does not know yet
        assert phone == "33677001122"
        expect(page.locator("#file-name")).to_have_text("Unknown caller")
    with page.context.expect_page() as popped:  # the guide's screen-pop, on answer
        banner.locator('.call[data-phase="offered"] [data-action="answer"]').click()
    popup = popped.value
    popup.wait_for_load_state()
    assert "action=in" in popup.url
    expect(popup.locator("#file-number")).to_have_text(phone or "")
    banner.locator('.call[data-phase="connected"] [data-action="hangup"]').click()
    expect(page.locator("#log")).to_contain_text("set_notif_endCall")
    assert "The example CRM, logged in as ana@demo.example" in demo.output.read_text()


def test_the_example_crm_works_from_another_origin(page: Page, demo: Demo) -> None:
    port = free_port()
    credentials = demo.credentials
    basic = (credentials["api_login"], credentials["api_password"])
    account = httpx.get(f"{demo.base}/api/v1/account", auth=basic).json()
    origins = [*account["allowed_origins"], f"http://localhost:{port}"]
    allowed = httpx.patch(
        f"{demo.base}/api/v1/account", auth=basic, json={"allowed_origins": origins}
    )
    assert allowed.status_code == 200, allowed.text
    example = STATIC_DIR / "example"
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "-b", "127.0.0.1", "-d", str(example)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/index.html", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        token = demo.credentials["example_url"].split("token_session=", 1)[1]
        page.goto(
            f"http://localhost:{port}/index.html?vm={demo.base}&token_session={token}&sound=off"
        )
        banner = page.frame_locator("#vm-banner")
        expect(banner.locator("#conn")).to_have_attribute("data-state", "live", timeout=15_000)
        expect(page.locator("#log")).to_contain_text("login →")
        page.click('[data-status="break"]')
        expect(page.locator("#status")).to_have_text("break")
    finally:
        server.terminate()
        server.wait(timeout=10)
