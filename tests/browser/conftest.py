from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.browser.support import launch
from tests.support import LiveServer, SeededAccount, live_server, make_settings
from voicemgmt.config import Settings

FAST: dict[str, Any] = {
    "sim_prompt_seconds": 0.1,
    "sim_digit_interval": 0.02,
    "sim_customer_answer_after": 0.2,
}


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = launch(playwright)
    yield chromium
    chromium.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile per test (its own storage), English unless a test says."""
    created = browser.new_context(viewport={"width": 360, "height": 640}, locale="en-GB")
    yield created
    created.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, "", **FAST)


@pytest.fixture
def server(settings: Settings, seeded: tuple[SeededAccount, SeededAccount]) -> Iterator[LiveServer]:
    with live_server(settings) as running:
        yield running
