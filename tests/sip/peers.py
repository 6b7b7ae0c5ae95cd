"""Real SIP peers for end-to-end tests: baresip scripted over ctrl_tcp, SIPp scenarios.

Each peer runs as a child process on free loopback ports and is stopped by the test that
started it. Under ``CI=true`` a missing program fails the test instead of skipping it.
"""

from __future__ import annotations

import array
import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import wave
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def need(program: str) -> str:
    found = shutil.which(program)
    if found is None:
        message = f"{program} is not installed (scripts/install-test-system-deps.sh)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return found


# Below Linux's ephemeral range (32768-60999), where every bind(0) and outgoing connection of
# the machine lands: a long run of free ports is found here even while other tests are busy.
QUIET_PORTS = range(10_000, 32_000)


def free_udp_port(pairs: int = 1, gap: int = 2) -> int:
    """A port P with P..P+gap*pairs free for UDP and TCP (baresip also opens TLS on P+1)."""
    span = gap * pairs
    for _ in range(200):
        port = random.randrange(QUIET_PORTS.start, QUIET_PORTS.stop - span, 2)
        try:
            for offset in range(span):
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    with socket.socket(socket.AF_INET, kind) as sock:
                        sock.bind(("127.0.0.1", port + offset))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port range")


def write_wav(path: Path, samples: array.array[int], rate: int = 8000) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.tobytes())


def read_wav(path: Path) -> tuple[array.array[int], int]:
    with wave.open(str(path)) as wav:
        rate, channels = wav.getframerate(), wav.getnchannels()
        samples = array.array("h", wav.readframes(wav.getnframes()))
    if channels > 1:
        samples = array.array("h", samples[::channels])
    return samples, rate


def tone_sequence(freqs: list[float], seconds_each: float, rate: int = 8000) -> array.array[int]:
    """A recognisable, non-periodic test signal: a run of tones with a short gap."""
    out = array.array("h")
    for index, frequency in enumerate(freqs):
        count = int(rate * seconds_each)
        for i in range(count):
            envelope = min(1.0, i / 200, (count - i) / 200)
            value = 9000 * envelope * math.sin(2 * math.pi * frequency * i / rate + index)
            out.append(int(value))
        out.extend([0] * int(rate * 0.05))
    return out


def correlation(heard: array.array[int], reference: array.array[int]) -> float:
    """The best normalised cross-correlation of ``reference`` anywhere inside ``heard``."""
    import numpy as np

    a = np.asarray(heard, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    if len(a) < len(b) or not np.any(b):
        return 0.0
    size = 1 << math.ceil(math.log2(len(a) + len(b)))
    product = np.fft.irfft(np.fft.rfft(a, size) * np.conj(np.fft.rfft(b, size)), size)
    scores = product[: len(a) - len(b) + 1]
    energy = np.convolve(a * a, np.ones(len(b)), mode="valid")
    norm = np.sqrt(np.maximum(energy, 1e-9) * float(np.dot(b, b)))
    return float(np.max(scores / norm))


class Baresip:
    """One baresip user agent, driven through its ctrl_tcp socket."""

    def __init__(
        self,
        workdir: Path,
        name: str,
        *,
        source: Path,
        answermode: str,
        host: str = "127.0.0.1",
        extra_config: tuple[str, ...] = (),
    ) -> None:
        self.binary = need("baresip")
        self.host = host
        self.dir = workdir / name
        self.dir.mkdir(parents=True)
        self.records = self.dir / "records"
        self.records.mkdir()
        self.sip_port = free_udp_port(gap=4)
        self.ctrl_port = free_udp_port(gap=1)
        rtp = free_udp_port(pairs=8)
        self.name = name
        (self.dir / "config").write_text(
            "\n".join(
                [
                    "poll_method epoll",
                    f"sip_listen {host}:{self.sip_port}",
                    f"net_interface {host}",
                    f"audio_source aufile,{source}",
                    "audio_player aufile,/dev/null",
                    "audio_alert aufile,/dev/null",
                    "ausrc_srate 8000",
                    "auplay_srate 8000",
                    "ausrc_channels 1",
                    "auplay_channels 1",
                    f"rtp_ports {rtp}-{rtp + 15}",
                    "rtcp_mux no",
                    "jitter_buffer_delay 1-5",
                    "module_path /usr/lib/baresip/modules",
                    *(line for line in extra_config if line.startswith("module ")),  # before
                    "module g711.so",
                    "module aufile.so",
                    "module account.so",
                    "module contact.so",
                    "module menu.so",
                    "module sndfile.so",
                    "module_app ctrl_tcp.so",
                    f"snd_path {self.records}",
                    f"ctrl_tcp_listen 127.0.0.1:{self.ctrl_port}",
                    *(line for line in extra_config if not line.startswith("module ")),
                    "",
                ]
            )
        )
        self.answermode = answermode
        self.accounts: list[str] = []
        self._process: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._buffer = b""
        self.events: list[dict[str, Any]] = []
        self._token = 0

    @property
    def address(self) -> str:
        return f"{self.host}:{self.sip_port}"

    def add_account(self, aor: str, **params: str) -> None:
        extra = "".join(f";{k}={v}" for k, v in params.items())
        line = f"<{aor}>;answermode={self.answermode};audio_codecs=PCMU,PCMA{extra}"
        self.accounts.append(line)

    def start(self, *, trace: bool = False) -> None:
        """Run the phone; ``trace``: it writes every SIP message it sends and receives to its
        log (``-s``), for a test that replays one."""
        if not self.accounts:
            self.add_account(f"sip:{self.name}@{self.address}", regint="0")
        (self.dir / "accounts").write_text("\n".join(self.accounts) + "\n")
        (self.dir / "contacts").write_text("")
        self.log = open(self.dir / "baresip.log", "wb")  # noqa: SIM115 (closed in stop)
        self._process = subprocess.Popen(
            [self.binary, "-f", str(self.dir), *(["-s"] if trace else [])],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                self._sock = socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    raise RuntimeError(
                        f"baresip {self.name} did not start: {self.logs()}"
                    ) from None
                time.sleep(0.1)

    def logs(self) -> str:
        path = self.dir / "baresip.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def wait_log(self, text: str, timeout: float = 15.0) -> str:
        """Wait for ``text`` in baresip's output (for what happens before ctrl_tcp connects)."""
        deadline = time.monotonic() + timeout
        while text not in (found := self.logs()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"baresip {self.name}: no {text!r} in {found}")
            time.sleep(0.1)
        return found

    def stop(self) -> None:
        if self._sock is not None:
            self._sock.close()
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait()
        if hasattr(self, "log"):
            self.log.close()

    def command(self, command: str, params: str = "") -> dict[str, Any]:
        assert self._sock is not None
        self._token += 1
        token = f"t{self._token}"
        body = json.dumps({"command": command, "params": params, "token": token}).encode()
        self._sock.sendall(str(len(body)).encode() + b":" + body + b",")
        reply = self._wait(lambda m: m.get("response") is True and m.get("token") == token, 10)
        return reply

    def wait_event(self, kind: str, timeout: float = 15.0) -> dict[str, Any]:
        for index, event in enumerate(self.events):
            if event.get("type") == kind:
                return self.events.pop(index)
        found = self._wait(lambda m: m.get("event") is True and m.get("type") == kind, timeout)
        self.events.remove(found)
        return found

    def _wait(self, match: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
        assert self._sock is not None
        deadline = time.monotonic() + timeout
        while True:
            for message in self._messages():
                if match(message):
                    return message
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"baresip {self.name}: nothing matched; events {self.events}")
            self._sock.settimeout(min(left, 0.5))
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                raise RuntimeError(f"baresip {self.name} closed ctrl_tcp: {self.logs()}")
            self._buffer += chunk

    def _messages(self) -> Iterator[dict[str, Any]]:
        while True:
            length, colon, rest = self._buffer.partition(b":")
            if not colon or not length.isdigit() or len(rest) < int(length) + 1:
                return
            body, self._buffer = rest[: int(length)], rest[int(length) + 1 :]
            message = json.loads(body)
            if message.get("event"):
                self.events.append(message)
            yield message

    def recording(self, direction: str = "dec") -> Path:
        """What this phone heard (``dec``) or sent (``enc``) during its last call, once
        baresip has finished writing it."""
        deadline = time.monotonic() + 10
        last_size = -1
        while True:
            found = sorted(self.records.glob(f"*-{direction}.wav"), key=lambda p: p.stat().st_mtime)
            size = found[-1].stat().st_size if found else -1
            if size > 44 and size == last_size:
                return found[-1]
            if time.monotonic() > deadline:
                raise FileNotFoundError(f"no finished {direction} recording in {self.records}")
            last_size = size
            time.sleep(0.3)


@contextmanager
def baresip(
    workdir: Path,
    name: str,
    *,
    source: Path,
    answermode: str = "manual",
    host: str = "127.0.0.1",
    extra_config: tuple[str, ...] = (),
) -> Iterator[Baresip]:
    """``extra_config``: more lines of its config (TLS files; ``module srtp.so``, loaded
    before the accounts that name it)."""
    phone = Baresip(
        workdir, name, source=source, answermode=answermode, host=host, extra_config=extra_config
    )
    try:
        yield phone
    finally:
        phone.stop()


class Rtpengine:
    """The rtpengine daemon in userspace mode, on free loopback ports, for one test."""

    def __init__(self, workdir: Path) -> None:
        self.binary = need("rtpengine")
        self.ng_port = free_udp_port(gap=1)
        self.dtmf_port = free_udp_port(gap=1)
        self.rtp = free_udp_port(pairs=200)
        self.dir = workdir / "rtpengine"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.threads = 2
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, port_count: int = 400) -> None:
        self.log = open(self.dir / "rtpengine.log", "wb")  # noqa: SIM115 (closed in stop)
        self._process = subprocess.Popen(
            [
                self.binary,
                "--config-file=none",
                "--table=-1",
                "--interface=127.0.0.1",
                f"--listen-ng=127.0.0.1:{self.ng_port}",
                f"--port-min={self.rtp}",
                f"--port-max={self.rtp + port_count - 1}",
                f"--dtmf-log-dest=127.0.0.1:{self.dtmf_port}",
                "--foreground",
                "--log-stderr",
                "--log-level=6",
                f"--num-threads={self.threads}",
                "--delete-delay=0",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 15
        while b"Startup complete" not in (self.dir / "rtpengine.log").read_bytes():
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("rtpengine did not start: " + self.logs())
            time.sleep(0.1)

    def logs(self) -> str:
        return (self.dir / "rtpengine.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait()
        if hasattr(self, "log"):
            self.log.close()


@contextmanager
def rtpengine(workdir: Path) -> Iterator[Rtpengine]:
    daemon = Rtpengine(workdir)
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.stop()
