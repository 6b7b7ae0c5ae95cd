"""Benchmark: SIP call setups per second with zero failures, the product against sippy.

Run::

    .venv/bin/python bench/sip_setup.py [--rates 10,20,30,50,75,100,150,200,300,400]
                                        [--seconds 5]
                                        [--talk 500]

The same load goes through each system: SIPp as the caller (``-sn uac``, ``--talk`` ms of
call, then BYE) and SIPp as the answering side (``-sn uas``).

- **the product**: ``VM_SWITCH=sip`` in a process of its own (uvloop, SQLite), one account,
  one number, no IVR, a group without wrap-up and enough operators, each with a SIP device
  whose static contact is the answering SIPp: every call is answered, queued, offered to an
  operator, rung on their "phone", bridged and recorded, the routing core and the call
  records doing their full work;
- **sippy** ``b2bua_simple`` (PyPI ``sippy``), relaying each INVITE to the answering SIPp.

For each rate of ``--rates``, ``rate * --seconds`` calls are placed; a stage passes when
every call was set up (see ``stage``) and none failed. The ladder stops at the first
failing stage. It prints per stage the successes and failures and the CPU the system under
test used, then the best rate with zero failures of each and their ratio (goal ≥ 2).

A benchmark never gates: missing the goal still exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.sip.peers import free_udp_port  # noqa: E402

NUMBER = "33170200200"


# the product, in a child process -------------------------------------------------------------


async def serve_product(data_dir: str, sip_port: int, uas_port: int, operators: int) -> None:
    from voicemgmt.bootstrap import build
    from voicemgmt.config import Settings
    from voicemgmt.domain.directory import Membership
    from voicemgmt.domain.routing.model import Presence

    settings = Settings(
        data_dir=Path(data_dir),
        switch="sip",
        sip_listen=f"127.0.0.1:{sip_port}",
        sip_trunk_sources=["127.0.0.1/32"],
        rtp_ports=f"{free_rtp_base()}-{free_rtp_base() + 2 * 4 * operators}",
        secret_key="bench-secret-key-of-at-least-32-characters",
        log_level="warning",
        sip_max_calls=10_000,
    )
    container = build(settings)
    await container.start()
    directory = container.directory
    account = await directory.create_account(login="bench", name="Bench", password="bench-pass")
    group = await directory.create_group(
        account.id, name="Support", settings={"wrap_up": 0, "ring_timeout": 30, "max_wait": 60}
    )
    await directory.create_number(account.id, e164=NUMBER, group_id=group.id, label="Bench")
    made = []
    for index in range(operators):
        operator = await directory.create_operator(
            account.id,
            name=f"Operator {index}",
            email=f"op{index}@bench.example",
            memberships=[Membership(group.id, 1)],
        )
        await container.sip_devices.set_device(
            account.id,
            operator.id,
            username=f"op{index}",
            contact=f"sip:op{index}@127.0.0.1:{uas_port}",
        )
        made.append(operator.id)
    for operator_id in made:  # once all exist: the routing core is built from the directory
        await container.routing.set_presence(account.id, operator_id, Presence.ONLINE, "bench")
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def stopped() -> None:
        if not done.done():
            done.set_result(None)

    loop.add_reader(sys.stdin.fileno(), stopped)
    await done
    await container.close()


def free_rtp_base() -> int:
    return 20000 + (os.getpid() % 200) * 100


# SIPp ------------------------------------------------------------------------------------


def sipp(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["sipp", *args, "-nostdin", "-trace_screen"],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def counts(cwd: Path, scenario: str) -> tuple[int, int]:
    """(successful, failed) from the screen file SIPp leaves at its end."""
    found = sorted(cwd.glob(f"{scenario}_*_screen.log"), key=lambda p: p.stat().st_mtime)
    if not found:
        return 0, -1
    text = found[-1].read_text(errors="replace")
    success = re.findall(r"Successful call\s+\|\s+\d+\s+\|\s+(\d+)", text)
    failed = re.findall(r"Failed call\s+\|\s+\d+\s+\|\s+(\d+)", text)
    return (int(success[-1]) if success else 0, int(failed[-1]) if failed else -1)


def stage(
    target: str,
    rate: int,
    seconds: float,
    talk: int,
    work: Path,
    answered: Callable[[], int] | None,
) -> tuple[int, int, int]:
    """Place ``rate * seconds`` calls; (calls, calls set up, failures).

    A call is set up when SIPp the caller saw it through (INVITE, 200, ACK, BYE, 200) and
    ``answered()`` grew by one for it: for the product, the operator's leg was answered and
    bridged (the product answers the caller first, its queue plays music); sippy answers the
    caller only once the callee did, so the caller's count says it all.
    """
    calls = int(rate * seconds)
    for old in work.glob("uac_*_screen.log"):
        old.unlink()
    before = answered() if answered is not None else 0
    uac = sipp(
        "-sn",
        "uac",
        target,
        "-s",
        NUMBER,
        "-i",
        "127.0.0.1",
        "-p",
        str(free_udp_port(gap=2)),
        "-r",
        str(rate),
        "-m",
        str(calls),
        "-d",
        str(talk),
        "-timeout",
        f"{int(seconds + 30)}s",
        "-timeout_error",
        "-max_socket",
        "2048",
        cwd=work,
    )
    try:
        uac.wait(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        uac.kill()
        uac.wait()
    ok, failed = counts(work, "uac")
    if answered is None:
        return calls, ok, max(0, failed) + calls - ok
    deadline = time.monotonic() + 10
    while answered() - before < ok and time.monotonic() < deadline:
        time.sleep(0.2)
    set_up = min(ok, answered() - before)
    return calls, set_up, max(0, failed) + calls - set_up


def answered_records(database: Path) -> int:
    with contextlib.closing(sqlite3.connect(database, timeout=10)) as connection:
        (count,) = connection.execute(
            "SELECT count(*) FROM call_records WHERE outcome = 'answered'"
        ).fetchone()
    return int(count)


def cpu_of(pid: int) -> float:
    total = 0.0
    for path in [Path(f"/proc/{pid}/stat")]:
        fields = path.read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def ladder(
    name: str,
    target: str,
    pid: int,
    rates: list[int],
    args: argparse.Namespace,
    work: Path,
    answered: Callable[[], int] | None,
) -> int:
    best = 0
    for rate in rates:
        before = cpu_of(pid)
        calls, ok, failures = stage(target, rate, args.seconds, args.talk, work, answered)
        cpu = cpu_of(pid) - before
        print(f"{name:<8} {rate:>6} {calls:>6} {ok:>6} {failures:>8} {cpu:>7.2f}", flush=True)
        if failures:
            break
        best = rate
        time.sleep(1.0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="10,20,30,50,75,100,150,200,300,400")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--talk", type=int, default=500)
    args = parser.parse_args()
    if shutil.which("sipp") is None:
        print("SIPp is not installed (scripts/install-test-system-deps.sh)")
        return
    rates = [int(r) for r in args.rates.split(",")]
    operators = int(max(rates) * (args.talk / 1000 + 1.5)) + 50
    print(f"{'system':<8} {'rate':>6} {'calls':>6} {'ok':>6} {'failures':>8} {'CPU s':>7}")
    results: dict[str, int] = {}
    work = Path(tempfile.mkdtemp(prefix="vm-bench-sip-"))
    try:
        uas_port = free_udp_port(gap=2)
        sip_port = free_udp_port(gap=2)
        uas = sipp("-sn", "uas", "-i", "127.0.0.1", "-p", str(uas_port), cwd=work)
        product = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--serve",
                str(work / "data"),
                str(sip_port),
                str(uas_port),
                str(operators),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert product.stdout is not None
            if product.stdout.readline().strip() != "ready":
                raise SystemExit("the product did not start")
            database = work / "data" / "voicemgmt.db"
            results["product"] = ladder(
                "product",
                f"127.0.0.1:{sip_port}",
                product.pid,
                rates,
                args,
                work,
                lambda: answered_records(database),
            )
        finally:
            product.kill()
            product.wait()
        sippy_port = free_udp_port(gap=2)
        b2bua = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("b2bua_simple")),
                "-f",
                "-l",
                "127.0.0.1",
                "-p",
                str(sippy_port),
                "-n",
                f"127.0.0.1:{uas_port}",
                "-L",
                str(work / "sippy.log"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(2.0)
            results["sippy"] = ladder(
                "sippy", f"127.0.0.1:{sippy_port}", b2bua.pid, rates, args, work, None
            )
        finally:
            b2bua.kill()
            b2bua.wait()
    finally:
        uas.kill()
        uas.wait()
        if not os.environ.get("VM_BENCH_KEEP"):  # keep the SIPp and sippy logs to look at
            shutil.rmtree(work, ignore_errors=True)
    ratio = results["product"] / results["sippy"] if results["sippy"] else float("inf")
    print()
    print(
        f"best rate with zero failures: product {results['product']} calls/s, "
        f"sippy b2bua_simple {results['sippy']} calls/s"
    )
    print(f"ratio product / sippy: {ratio:.2f} (goal >= 2)")
    if results["product"] == rates[-1]:
        print("  (the product passed the whole ladder: its ceiling, and the ratio, are bounds)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        import uvloop

        data_dir, sip_port, uas_port, operators = sys.argv[2:6]
        uvloop.run(serve_product(data_dir, int(sip_port), int(uas_port), int(operators)))
    else:
        main()
