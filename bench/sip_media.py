"""Benchmark: concurrent calls with media through the product's relay, against rtpengine.

Run::

    .venv/bin/python bench/sip_media.py [--calls 500,750,1000,1250] [--seconds 5]

For each backend and each number of calls, N bridged calls are set up through the media
port exactly as the SIP driver does it (``open_leg``, ``connect``, ``bridge``), the relay in a
child process of its own under uvloop (one core, like the real server's event loop), rtpengine
as a userspace daemon with one worker thread. A generator then sends both legs of every call
50 packets/s of 160-byte PCMU (100 packets/s per call, as two phones talking) for
``--seconds`` and counts what comes out of the other leg. It prints, per stage, the packets
sent, the loss and the CPU each side used, then the most calls each backend carried with less
than 0.1 % loss and their ratio (relay / rtpengine; goal ≥ 0.5, and ≥ 500 calls for the relay),
and the CPU each spent per packet at the first stage. The generator is Python too and shares
the 2 cores: past about 1000 calls it cannot keep the pace, which bounds what is measured.

A benchmark never gates: missing the goal still exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.sip.peers import Rtpengine  # noqa: E402

from voicemgmt.adapters.switch.sip import sdp  # noqa: E402
from voicemgmt.adapters.switch.sip.media.relay import RelayLeg, RtpRelay  # noqa: E402

LOSS_GOAL = 0.001
PACKET = bytes([0x80, 0]) + bytes(10) + b"\xff" * 160


# the relay, in a child process ---------------------------------------------------------------


async def serve_relay(first_port: int) -> None:
    remotes = json.loads(sys.stdin.readline())  # per call: the generator's two ports
    calls = len(remotes)
    relay = RtpRelay("127.0.0.1", range(first_port, first_port + 4 * calls + 10))
    ports = []
    legs: list[RelayLeg] = []
    for index, (a_port, b_port) in enumerate(remotes):
        a = await relay.open_leg(f"c{index}", "caller")
        b = await relay.open_leg(f"c{index}", "op1")
        a.connect(sdp.Session("127.0.0.1", a_port, (sdp.PCMU,)))
        b.connect(sdp.Session("127.0.0.1", b_port, (sdp.PCMU,)))
        relay.bridge(a, b)
        legs.extend((a, b))
        ports.append((a.local_address[1], b.local_address[1]))
    print(json.dumps(ports), flush=True)
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def stopped() -> None:
        if not done.done():
            done.set_result(None)

    loop.add_reader(sys.stdin.fileno(), stopped)
    await done
    usage = resource.getrusage(resource.RUSAGE_SELF)
    received = sum(leg.received for leg in legs)
    forwarded = sum(leg.sent for leg in legs)
    print(
        json.dumps({"cpu": usage.ru_utime + usage.ru_stime, "in": received, "out": forwarded}),
        flush=True,
    )
    await relay.close()


# rtpengine, driven over ng -----------------------------------------------------------------


def rtpengine_calls(daemon: Rtpengine, remotes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    from voicemgmt.adapters.switch.sip.media.ng import NgClient

    async def setup() -> list[tuple[int, int]]:
        client = NgClient(("127.0.0.1", daemon.ng_port))
        await client.open()
        ports = []
        calls = len(remotes)
        for index, (a_port, b_port) in enumerate(remotes):
            a_sdp = sdp.Session("127.0.0.1", a_port, (sdp.PCMU,)).render()
            b_sdp = sdp.Session("127.0.0.1", b_port, (sdp.PCMU,)).render()
            common = {"call-id": f"bench-{calls}-{index}", "flags": ["port latching"]}
            offer = await client.request(
                {"command": "offer", "from-tag": "remote", "sdp": a_sdp, **common}
            )
            answer = await client.request(
                {"command": "answer", "from-tag": "remote", "to-tag": "ops", "sdp": b_sdp, **common}
            )
            ports.append((sdp.parse(answer["sdp"]).port, sdp.parse(offer["sdp"]).port))
        client.close()
        return ports

    return asyncio.run(setup())


def rtpengine_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


# the traffic ---------------------------------------------------------------------------------


def blast(ports: list[tuple[int, int]], sockets: Sockets, seconds: float) -> tuple[int, int, float]:
    """Send 50 packets/s on each leg of each call, spread over each 20 ms (as many phones
    would, not in one burst); (sent, received, generator CPU)."""
    start_cpu = time.process_time()
    sent = received = 0
    tick = time.monotonic()
    end = tick + seconds
    sequence = 0
    chunk = 20
    while tick < end:
        sequence += 1
        packet = (
            PACKET[:2]
            + (sequence & 0xFFFF).to_bytes(2, "big")
            + (sequence * 160 & 0xFFFFFFFF).to_bytes(4, "big")
            + PACKET[8:]
        )
        slices = range(0, len(ports), chunk)
        for number, start in enumerate(slices):
            for index in range(start, min(start + chunk, len(ports))):
                a_port, b_port = ports[index]
                a, b = sockets.of(index)
                a.sendto(packet, ("127.0.0.1", a_port))
                b.sendto(packet, ("127.0.0.1", b_port))
            received += sockets.drain()
            due = tick + 0.02 * (number + 1) / len(slices)
            while time.monotonic() < due:
                received += sockets.drain()
                time.sleep(0.0005)
        sent += 2 * len(ports)
        tick += 0.02
    settle = time.monotonic() + 0.5
    while time.monotonic() < settle:
        received += sockets.drain()
        time.sleep(0.005)
    return sent, received, time.process_time() - start_cpu


def drain(sock: socket.socket) -> int:
    count = 0
    while True:
        try:
            sock.recv(2048)
        except BlockingIOError:
            return count
        count += 1


def port_block(count: int) -> int:
    """The first of ``count`` free UDP ports, below the kernel's ephemeral range."""
    rng = random.Random()
    for _ in range(100):
        base = rng.randrange(10000, 30000 - count) & ~1
        taken = []
        try:
            for port in range(base, base + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                taken.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in taken:
                sock.close()
        return base
    raise RuntimeError("no free block of UDP ports")


class Sockets:
    """The generator's sockets: calls spread over ``count`` pairs, so that bursts fit in the
    kernel's receive buffers (the generator must not be where packets are lost)."""

    def __init__(self, count: int = 32) -> None:
        self.a: list[socket.socket] = []
        self.b: list[socket.socket] = []
        for side in (self.a, self.b):
            for _ in range(count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
                sock.bind(("127.0.0.1", 0))
                sock.setblocking(False)
                side.append(sock)

    def of(self, call: int) -> tuple[socket.socket, socket.socket]:
        return self.a[call % len(self.a)], self.b[call % len(self.b)]

    def remotes(self, calls: int) -> list[tuple[int, int]]:
        return [(a.getsockname()[1], b.getsockname()[1]) for a, b in map(self.of, range(calls))]

    def drain(self) -> int:
        return sum(drain(sock) for sock in self.a + self.b)

    def close(self) -> None:
        for sock in self.a + self.b:
            sock.close()


def warm_up(ports: list[tuple[int, int]], sockets: Sockets) -> None:
    """A few packets per leg first, so that latching and lazy work are done."""
    blast(ports, sockets, 0.2)


def stage_relay(calls: int, seconds: float) -> dict[str, float]:
    sockets = Sockets()
    first = port_block(4 * calls + 10)
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve-relay", str(first)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdin is not None
        child.stdin.write(json.dumps(sockets.remotes(calls)) + "\n")
        child.stdin.flush()
        ports = [(a, b) for a, b in json.loads(child.stdout.readline())]
        warm_up(ports, sockets)
        sent, received, generator_cpu = blast(ports, sockets, seconds)
        child.stdin.write("stop\n")
        child.stdin.flush()
        counts = json.loads(child.stdout.readline())
    finally:
        child.kill()
        child.wait()
        sockets.close()
    return {
        "sent": sent,
        "received": received,
        "cpu": counts["cpu"],
        "generator_cpu": generator_cpu,
    }


def stage_rtpengine(calls: int, seconds: float, workdir: Path) -> dict[str, float]:
    sockets = Sockets()
    daemon = Rtpengine(workdir / f"rtpengine-{calls}")
    daemon.rtp = port_block(4 * calls + 20)
    daemon.threads = 1
    try:
        daemon.start(port_count=4 * calls + 20)
        ports = rtpengine_calls(daemon, sockets.remotes(calls))
        warm_up(ports, sockets)
        assert daemon._process is not None
        before = rtpengine_cpu(daemon._process.pid)
        sent, received, generator_cpu = blast(ports, sockets, seconds)
        cpu = rtpengine_cpu(daemon._process.pid) - before
    finally:
        daemon.stop()
        sockets.close()
    return {"sent": sent, "received": received, "cpu": cpu, "generator_cpu": generator_cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", default="500,750,1000,1250")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    if shutil.which("rtpengine") is None:
        print("rtpengine is not installed (scripts/install-test-system-deps.sh)")
        return
    ladder = [int(n) for n in args.calls.split(",")]
    best: dict[str, int] = {"relay": 0, "rtpengine": 0}
    cpu_per_packet: dict[str, float] = {}
    print(
        f"{'backend':<10} {'calls':>6} {'packets':>9} {'loss %':>8} {'CPU s':>6} {'gen CPU s':>9}"
    )
    with tempfile.TemporaryDirectory(prefix="vm-bench-media-") as tmp:
        for backend in ("relay", "rtpengine"):
            for calls in ladder:
                if backend == "relay":
                    result = stage_relay(calls, args.seconds)
                else:
                    result = stage_rtpengine(calls, args.seconds, Path(tmp))
                loss = 1 - result["received"] / result["sent"]
                print(
                    f"{backend:<10} {calls:>6} {int(result['sent']):>9} {100 * loss:>8.3f} "
                    f"{result['cpu']:>6.2f} {result['generator_cpu']:>9.2f}",
                    flush=True,
                )
                if calls == ladder[0]:
                    cpu_per_packet[backend] = result["cpu"] / result["sent"]
                if loss < LOSS_GOAL:
                    best[backend] = calls
                else:
                    break
    ratio = best["relay"] / best["rtpengine"] if best["rtpengine"] else float("inf")
    print()
    print(f"most calls with < 0.1 % loss: relay {best['relay']}, rtpengine {best['rtpengine']}")
    print(f"ratio relay / rtpengine: {ratio:.2f} (goal >= 0.5; relay goal >= 500 calls)")
    if best["rtpengine"] == ladder[-1]:
        print("  (rtpengine carried the whole ladder: its ceiling, and so the ratio, is a bound)")
    if len(cpu_per_packet) == 2:
        efficiency = cpu_per_packet["rtpengine"] / cpu_per_packet["relay"]
        print(
            f"CPU per packet at {ladder[0]} calls: relay "
            f"{1e6 * cpu_per_packet['relay']:.1f} us, rtpengine "
            f"{1e6 * cpu_per_packet['rtpengine']:.1f} us (ratio rtpengine / relay "
            f"{efficiency:.2f})"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-relay":
        import uvloop

        uvloop.run(serve_relay(int(sys.argv[2])))
    else:
        main()
