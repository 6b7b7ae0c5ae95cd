"""What the benchmarks share: the server in its own process, CPU and memory from /proc,
percentiles. (``bench/`` is a folder of scripts: each imports this as ``_support``.)"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
SERVER_START_SECONDS = 60.0
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class ServerFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def status_kib(self, key: str) -> int:
        """A ``kB`` line of /proc/<pid>/status, such as VmHWM (peak RSS) or VmRSS."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1])
        raise ServerFailed(f"no {key} in /proc/{self.pid}/status")

    def log_tail(self, lines: int = 20) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _healthy(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=2) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            return sock.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


@contextmanager
def running_server(
    data_dir: Path, env: Mapping[str, str] | None = None, args: Sequence[str] = ()
) -> Iterator[Server]:
    """``voicemgmt serve`` (with ``args``) on a free loopback port, the simulated switch at
    full speed (plus ``env``); stopped whatever happens."""
    executable = Path(sys.executable).parent / "voicemgmt"
    if not executable.exists():
        raise ServerFailed(f"{executable} not found: install the project in this venv")
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("VM_")}
    environment |= {
        "VM_DATA_DIR": str(data_dir),
        "VM_LOG_LEVEL": "warning",
        "VM_SIM_PROMPT_SECONDS": "0",
        "VM_SIM_DIGIT_INTERVAL": "0",
        "VM_SIM_CUSTOMER_ANSWER_AFTER": "0",
        **(env or {}),
    }
    log = data_dir / "server.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [str(executable), "serve", "--host", HOST, "--port", str(port), *args],
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    server = Server(process, port, log)
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while not _healthy(port):
            if process.poll() is not None:
                raise ServerFailed(
                    f"the server exited with code {process.returncode}:\n{server.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise ServerFailed(f"the server did not start:\n{server.log_tail()}")
            time.sleep(0.05)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


# --- CPU and memory, from /proc -----------------------------------------------------------------


def _stat_fields(pid: int | str) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def process_seconds(pid: int) -> float:
    """User + system CPU seconds of one process."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int(_stat_fields(entry.name)[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(children.get(current, ()))
    return found


def memory_mib(pids: list[int]) -> float:
    """Memory of these processes together, in MiB: their proportional set size (PSS), so that
    pages they share (a browser's processes share most of theirs) count once."""
    total_kib = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kib += int(line.split()[1])
                    break
        except (OSError, IndexError, ValueError):
            continue
    return total_kib / 1024


def percentile_ms(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of durations in seconds, in milliseconds (nearest rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))
    return ordered[index] * 1000
