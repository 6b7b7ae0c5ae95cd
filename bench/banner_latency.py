"""Benchmark: a simulated call's injection → its card visible in the operator's banner.

Run::

    .venv/bin/python bench/banner_latency.py [--operators 50] [--rates 5,10,20] [--seconds 20]

What it does:

1. seeds, in a temporary data directory (SQLite), one account with ``--operators`` operators,
   each alone in a group of their own with a number of their own (no wrap-up), so that a call
   to number *i* is offered to operator *i* at once;
2. starts ``voicemgmt serve`` in its own process (simulated switch, prompts at 0);
3. opens every operator's banner (``/operateurs/index.htm?token_session=…``) in ONE headless
   Chromium (Debian's ``/usr/bin/chromium``, each banner in a context of its own), and waits
   until every banner is live and online;
4. at each rate of ``--rates``, for ``--seconds``, places calls (``POST /api/v1/sim/calls``)
   evenly spaced and round-robin over the operators; each caller hangs up after ``--ring``
   seconds unanswered, which frees its operator for the next one;
5. in each page, a measuring script (added by the benchmark through the DevTools protocol, not
   part of the product) notes when each call card entered the DOM and the frame showing it
   ran (``requestAnimationFrame`` then a task); latency = that time minus the time the request was
   sent, both on this machine's clock;
6. prints, per stage: calls placed, cards seen, latency p50 / p99 / max, and the CPU and
   memory of the server and of the browser.

Goal (issue): p99 ≤ 100 ms with 50 banners. A benchmark never gates: missing the goal exits 0.
"""

from __future__ import annotations

import sys

from playwright.sync_api import Browser, Page

from _page_latency import parser, run

MEASURE_CARDS = """
window.__vmShown = {};
window.__vmFrames = {};
(() => {  // when each call.offered frame reached the page, before any of the banner's work
  const Native = window.WebSocket;
  window.WebSocket = function (...args) {
    const socket = new Native(...args);
    socket.addEventListener("message", (message) => {
      const text = typeof message.data === "string" ? message.data : "";
      if (!text.includes('"call.offered"')) return;
      const match = /"id_call":"([^"]+)"/.exec(text);
      if (match) window.__vmFrames[match[1]] = performance.timeOrigin + performance.now();
    });
    return socket;
  };
  window.WebSocket.prototype = Native.prototype;
  Object.assign(window.WebSocket, Native);
})();
document.addEventListener("DOMContentLoaded", () => {
  const cards = document.getElementById("cards");
  if (!cards) return;
  new MutationObserver((records) => {
    for (const record of records) {
      for (const node of record.addedNodes) {
        if (node.nodeType !== 1 || !node.classList.contains("call")) continue;
        const id = node.dataset.call;
        requestAnimationFrame(() => setTimeout(() => {
          window.__vmShown[id] = performance.timeOrigin + performance.now();
        }, 0));
      }
    }
  }).observe(cards, { childList: true });
});
"""


def open_banners(browser: Browser, base: str, tokens: list[str]) -> list[Page]:
    pages = []
    for token in tokens:
        context = browser.new_context(viewport={"width": 360, "height": 640})
        context.add_init_script(MEASURE_CARDS)
        page = context.new_page()
        page.goto(f"{base}/operateurs/index.htm?sound=off&token_session={token}")
        pages.append(page)
    for page in pages:
        page.wait_for_selector("#conn[data-state=live]", timeout=60_000)
    return pages


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__.split("\n", 1)[0] if __doc__ else "").parse_args(argv)
    what = "operator banner latency: simulated call injected → its card shown"
    return run(args, what, open_banners, origins=[])


if __name__ == "__main__":
    sys.exit(main())
