"""Shared by the page-latency benchmarks (``banner_latency.py``, ``crm_latency.py``): one
account whose operators each have a group and a number of their own, the server in its own
process, N pages in one headless Chromium, calls placed at rising rates, and each page's own
record of when it showed each call (``window.__vmShown[id_call]``, epoch ms)."""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page, sync_playwright

from _support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ServerFailed,
    descendants,
    machine_busy_seconds,
    memory_mib,
    percentile_ms,
    process_seconds,
    running_server,
)
from voicemgmt.bootstrap import build
from voicemgmt.config import Settings
from voicemgmt.domain.directory import Membership

LOGIN, PASSWORD = "bench", "bench-api-password"
GOAL_P99_MS = 100.0
DRAIN_SECONDS = 10.0


def number_of(index: int) -> str:
    return f"33170300{index:03d}"


async def seed(data_dir: Path, operators: int, origins: list[str]) -> list[int]:
    settings = Settings(
        data_dir=data_dir,
        argon2_time_cost=1,
        argon2_memory_kib=8 * 1024,
        argon2_parallelism=1,
        log_level="warning",
    )
    container = build(settings)
    ids: list[int] = []
    try:
        await container.start()
        directory = container.directory
        account = await directory.create_account(login=LOGIN, name="Bench", password=PASSWORD)
        await directory.update_account(
            account.id, settings={"screen_pop": "off"}, allowed_origins=origins
        )
        for n in range(operators):
            group = await directory.create_group(
                account.id, name=f"Desk {n + 1}", settings={"wrap_up": 0}
            )
            operator = await directory.create_operator(
                account.id,
                name=f"Operator {n + 1}",
                email=f"op{n + 1}@bench.example",
                memberships=[Membership(group.id, 1)],
            )
            await directory.create_number(account.id, e164=number_of(n), group_id=group.id)
            ids.append(operator.id)
    finally:
        await container.close()
    return ids


@dataclass
class Stage:
    rate: float
    placed: dict[str, float]  # id_call → when its request was sent (epoch seconds)
    failures: int
    server_cpu: float
    browser_cpu: float
    machine_cpu: float
    seconds: float

    def latencies(self, shown: dict[str, float]) -> list[float]:
        return [shown[c] / 1000 - sent for c, sent in self.placed.items() if c in shown]


def run_stage(
    client: httpx.Client,
    operators: int,
    rate: float,
    seconds: float,
    ring: float,
    server_pid: int,
    browser_pids: list[int],
) -> Stage:
    count = max(1, int(rate * seconds))
    interval = 1.0 / rate
    placed: dict[str, float] = {}
    failures = 0
    cpu_before = (
        process_seconds(server_pid),
        sum(_cpu(p) for p in browser_pids),
        machine_busy_seconds(),
        time.perf_counter(),
    )
    start = time.perf_counter()
    for n in range(count):
        pause = start + n * interval - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        body = {"from": "33612345678", "to": number_of(n % operators), "hangup_after": ring}
        sent = time.time()
        answer = client.post("/api/v1/sim/calls", json=body)
        if answer.status_code == 201:
            placed[answer.json()["id_call"]] = sent
        else:
            failures += 1
    elapsed = time.perf_counter() - cpu_before[3]
    return Stage(
        rate,
        placed,
        failures,
        (process_seconds(server_pid) - cpu_before[0]) / elapsed,
        (sum(_cpu(p) for p in browser_pids) - cpu_before[1]) / elapsed,
        (machine_busy_seconds() - cpu_before[2]) / elapsed,
        elapsed,
    )


def _cpu(pid: int) -> float:
    try:
        return process_seconds(pid)
    except OSError:
        return 0.0


def collect(pages: list[Page], name: str = "__vmShown") -> dict[str, float]:
    """What the pages noted in ``window[name]`` (id_call → epoch ms), emptied as it is read."""
    noted: dict[str, float] = {}
    for page in pages:
        noted.update(
            page.evaluate(
                f"(() => {{ const n = window.{name} || {{}}; window.{name} = {{}}; return n; }})()"
            )
        )
    return noted


OpenPages = Callable[[Browser, str, list[str]], list[Page]]


def parser(description: str) -> argparse.ArgumentParser:
    found = argparse.ArgumentParser(description=description)
    found.add_argument("--operators", type=int, default=50)
    found.add_argument("--rates", default="5,10,20")
    found.add_argument("--seconds", type=float, default=20.0)
    found.add_argument("--ring", type=float, default=1.0, help="seconds before callers hang up")
    return found


def run(args: argparse.Namespace, what: str, open_pages: OpenPages, origins: list[str]) -> int:
    """Seed, serve, open the pages, place calls at each rate; print the figures."""
    rates = [float(r) for r in args.rates.split(",")]
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing (Debian package chromium)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="vm-bench-pages-") as tmp:
        data_dir = Path(tmp)
        operator_ids = asyncio.run(seed(data_dir, args.operators, origins))
        try:
            with (
                running_server(data_dir) as server,
                httpx.Client(
                    base_url=server.base_url, auth=(LOGIN, PASSWORD), timeout=30
                ) as client,
            ):
                tokens = [
                    client.post("/vm/token", json={"id_agent": i}).json()["token"]
                    for i in operator_ids
                ]
                for token in tokens:
                    httpx.put(
                        f"{server.base_url}/api/v1/me/status",
                        json={"status": "online"},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                with sync_playwright() as playwright:
                    browser = playwright.chromium.launch(
                        executable_path=CHROMIUM, args=CHROMIUM_ARGS
                    )
                    pages = open_pages(browser, server.base_url, tokens)
                    server_tree = set(descendants(server.pid))
                    browser_pids = [p for p in descendants(os.getpid()) if p not in server_tree]
                    print_header(what, args, server.base_url)
                    run_stage(client, args.operators, 5, 2, args.ring, server.pid, browser_pids)
                    time.sleep(args.ring + 1)
                    collect(pages)  # warm-up, not counted
                    collect(pages, "__vmFrames")
                    results = []
                    for rate in rates:
                        stage = run_stage(
                            client,
                            args.operators,
                            rate,
                            args.seconds,
                            args.ring,
                            server.pid,
                            browser_pids,
                        )
                        deadline = time.monotonic() + DRAIN_SECONDS
                        shown = collect(pages)
                        while len(shown) < len(stage.placed) and time.monotonic() < deadline:
                            time.sleep(0.5)
                            shown.update(collect(pages))
                        time.sleep(args.ring + 0.5)
                        frames = collect(pages, "__vmFrames")
                        results.append((stage, stage.latencies(shown), stage.latencies(frames)))
                    memory = (memory_mib([server.pid]), memory_mib(browser_pids))
                    browser.close()
        except ServerFailed as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print_results(results, memory)
    return 0


def print_header(what: str, args: argparse.Namespace, base: str) -> None:
    print(what)
    print(
        f"  {args.operators} pages in one headless Chromium ({CHROMIUM}), server {base}, "
        f"callers hang up after {args.ring:g} s, {args.seconds:g} s per rate"
    )


def print_results(
    results: list[tuple[Stage, list[float], list[float]]], memory: tuple[float, float]
) -> None:
    header = [
        "calls/s",
        "placed",
        "shown",
        "p50 ms",
        "p99 ms",
        "max ms",
        "server",
        "browser",
        "machine",
    ]
    widths = [8, 7, 6, 7, 7, 7, 7, 8, 8]
    print("  " + "  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    for stage, latencies, frames in results:
        cells = [
            f"{stage.rate:g}",
            str(len(stage.placed)),
            str(len(latencies)),
            f"{percentile_ms(latencies, 0.5):.1f}",
            f"{percentile_ms(latencies, 0.99):.1f}",
            f"{max(latencies) * 1000:.1f}" if latencies else "-",
            f"{stage.server_cpu:.0%}",
            f"{stage.browser_cpu:.0%}",
            f"{stage.machine_cpu:.0%}",
        ]
        print("  " + "  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)))
        if stage.failures:
            print(f"    {stage.failures} placements failed")
        if frames:
            print(
                f"    of which until the event's frame reached the page: "
                f"p50 {percentile_ms(frames, 0.5):.1f} ms, p99 {percentile_ms(frames, 0.99):.1f} ms"
            )
    every = [latency for _, latencies, _ in results for latency in latencies]
    if every:
        print(
            f"  all stages: p50 {statistics.median(every) * 1000:.1f} ms, "
            f"p99 {percentile_ms(every, 0.99):.1f} ms"
        )
        met = [
            f"{stage.rate:g}"
            for stage, latencies, _ in results
            if latencies
            and len(latencies) == len(stage.placed)
            and percentile_ms(latencies, 0.99) <= GOAL_P99_MS
        ]
        missed = [f"{stage.rate:g}" for stage, _, _ in results if f"{stage.rate:g}" not in met]
        print(
            f"  goal p99 <= {GOAL_P99_MS:g} ms, every call shown: "
            f"met at {', '.join(met) or 'no rate'} calls/s"
            + (f"; missed at {', '.join(missed)} calls/s" if missed else "")
        )
    print(
        f"  memory (PSS): server {memory[0]:.0f} MiB, "
        f"browser {memory[1]:.0f} MiB (all its processes)"
    )
    print("  CPU columns: share of one core; machine: all cores busy (2 cores = 200%)")
