"""``voicemgmt sim``: the commands and their options (``sim call``, ``sim load``).

Options are checked here, before anything is sent: a bad one gives one ``error:`` line on
stderr and exit code 2, as does an error before the load starts (server down, wrong
credentials, unknown number…), never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import signal
import sys
from typing import Annotated, Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from voicemgmt.cli.sim.api import REQUEST_TIMEOUT, ApiError, refusal, unreachable
from voicemgmt.cli.sim.load import LoadPlan, LoadRun
from voicemgmt.cli.sim.report import print_summary, print_table, summarize

sim_app = typer.Typer(
    help="Simulated calls against a running server (needs VM_SWITCH=simulated).",
    no_args_is_help=True,
)

DEFAULT_URL = "http://127.0.0.1:8000"
EXIT_INTERRUPTED = 130
EXIT_STREAM_LOST = 1
_SECONDS = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,9})?")

UrlOpt = Annotated[
    str,
    typer.Option("--url", envvar="VM_URL", help="The server's base URL.", show_envvar=True),
]
LoginOpt = Annotated[
    str | None,
    typer.Option(
        "--login",
        envvar="VM_API_LOGIN",
        help="The account's API login.",
        show_envvar=True,
        show_default=False,
    ),
]
PasswordOpt = Annotated[
    str | None,
    typer.Option(
        "--password",
        envvar="VM_API_PASSWORD",
        help="The account's API password.",
        show_envvar=True,
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(2)


def _credentials(login: str | None, password: str | None) -> tuple[str, str]:
    if not login:
        fail("--login is required (or set VM_API_LOGIN)")
    if not password:
        fail("--password is required (or set VM_API_PASSWORD)")
    return login, password


def _base_url(url: str) -> str:
    url = url.strip().rstrip("/")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        fail(f"--url is not a URL: {url!r}")
    if parsed.scheme not in ("http", "https") or not parsed.host:
        fail(f"--url must be an http:// or https:// URL, not {url!r}")
    return url


# --- sim call ----------------------------------------------------------------------------------


@sim_app.command("call")
def sim_call(
    caller: Annotated[str, typer.Option("--from", help="The caller's number (E.164 digits).")],
    to: Annotated[str, typer.Option("--to", help="One of the account's numbers.")],
    dtmf: Annotated[
        str, typer.Option("--dtmf", help="Keys the caller presses in the IVR (0-9 * #).")
    ] = "",
    hangup_after: Annotated[
        float | None,
        typer.Option(
            "--hangup-after",
            help="Seconds after which the caller hangs up, if the call is still up.",
            show_default=False,
        ),
    ] = None,
    url: UrlOpt = DEFAULT_URL,
    login: LoginOpt = None,
    password: PasswordOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Place one simulated inbound call; prints its id_call."""
    base = _base_url(url)
    auth = _credentials(login, password)
    body: dict[str, Any] = {"from": caller, "to": to}
    if dtmf:
        body["dtmf"] = dtmf
    if hangup_after is not None:
        body["hangup_after"] = hangup_after
    try:
        with httpx.Client(base_url=base, auth=auth, timeout=REQUEST_TIMEOUT) as client:
            response = client.post("/api/v1/sim/calls", json=body)
    except httpx.HTTPError as exc:
        fail(unreachable(base, exc).message)
    if response.status_code != 201:
        fail(refusal(response).message)
    try:
        placed = response.json()
        row = {"id_call": str(placed["id_call"]), "from": placed["from"], "to": placed["to"]}
    except (ValueError, KeyError, TypeError):
        fail(f"unexpected answer from {base}: {response.text[:200]}")
    if as_json:
        print(json.dumps(row))
    else:
        print_table([row], row)


# --- sim load: its settings -------------------------------------------------------------------


def _seconds_range(value: str, option: str) -> tuple[float, float]:
    """``"4"`` or ``"1-4"`` → (low, high) seconds."""
    low_text, dash, high_text = (part.strip() for part in value.partition("-"))
    # Plain digits: float() would also take "1_0", "inf" and other scripts' digits.
    if not _SECONDS.fullmatch(low_text) or (dash and not _SECONDS.fullmatch(high_text)):
        fail(f"{option} takes SECONDS or MIN-MAX (e.g. 1-4), not {value!r}")
    low = float(low_text)
    high = float(high_text) if dash else low
    if not (math.isfinite(low) and math.isfinite(high) and 0 <= low <= high):
        fail(f"{option} takes SECONDS or MIN-MAX with 0 <= MIN <= MAX, not {value!r}")
    return low, high


# --- sim load: the command ---------------------------------------------------------------------


LOAD_HELP = (
    "Drive realistic traffic for --duration seconds at --rate calls/s, then summarize.\n\n"
    "Callers arrive at random (Poisson), at most RATE x DURATION of them, each to one of the "
    "numbers, keying one of the --dtmf-choices; an --abandon fraction of them hang up after "
    "--patience. The account's operators (their tokens are fetched, keeping live ones) are set "
    "online; when one is offered a call (seen on the event stream of the account's first "
    "supervisor), they answer after --answer-delay and hang up after --talk. An answer refused "
    'because the offer went elsewhere or the caller left is normal ("answers lost").\n\n'
    "At the end the tool waits up to --drain seconds for the calls in progress, hangs up those "
    "its operators still hold, and puts every operator back to the status they had before "
    "(--leave-online keeps them online). The summary counts what became of the calls (from the "
    "events seen) beside the server's figures for the window, the offer latency (call placed "
    "to call.offered seen) and the API errors. Ctrl-C stops early with the summary so far "
    "(exit code 130); a lost event stream also stops it (exit code 1)."
)


@sim_app.command("load", help=LOAD_HELP)
def sim_load(
    rate: Annotated[float, typer.Option("--rate", help="Calls per second, on average.")],
    duration: Annotated[float, typer.Option("--duration", help="Seconds of arrivals.")],
    to: Annotated[
        list[str] | None,
        typer.Option(
            "--to", help="A number to call (repeat); default: every number of the account."
        ),
    ] = None,
    dtmf_choices: Annotated[
        str,
        typer.Option(
            "--dtmf-choices",
            help="IVR inputs, one picked at random per call, comma-separated; an empty choice "
            'keys nothing (e.g. "1,2123456#,").',
        ),
    ] = "",
    abandon: Annotated[
        float,
        typer.Option("--abandon", help="Fraction of callers who hang up after --patience."),
    ] = 0.1,
    patience: Annotated[
        str,
        typer.Option(
            "--patience", help="Seconds after arrival when those callers hang up: S or MIN-MAX."
        ),
    ] = "1-15",
    answer_delay: Annotated[
        str,
        typer.Option(
            "--answer-delay", help="Seconds an operator lets the phone ring: S or MIN-MAX."
        ),
    ] = "1-4",
    talk: Annotated[
        str, typer.Option("--talk", help="Seconds of talk before the operator hangs up.")
    ] = "5-30",
    operators: Annotated[
        str,
        typer.Option(
            "--operators", help="'all' the account's operators, or the first N (by id_agent)."
        ),
    ] = "all",
    seed: Annotated[
        int | None,
        typer.Option("--seed", help="Seed of the random choices.", show_default=False),
    ] = None,
    drain: Annotated[
        float,
        typer.Option("--drain", help="Seconds to wait at the end for calls still in progress."),
    ] = 60.0,
    concurrency: Annotated[
        int, typer.Option("--concurrency", help="HTTP requests in flight at most.")
    ] = 50,
    leave_online: Annotated[
        bool,
        typer.Option(
            "--leave-online", help="Leave the operators online instead of restoring their status."
        ),
    ] = False,
    url: UrlOpt = DEFAULT_URL,
    login: LoginOpt = None,
    password: PasswordOpt = None,
    as_json: JsonOpt = False,
) -> None:
    base = _base_url(url)
    auth = _credentials(login, password)
    if not (math.isfinite(rate) and rate > 0):
        fail("--rate must be more than 0 calls per second")
    if not (math.isfinite(duration) and duration > 0):
        fail("--duration must be more than 0 seconds")
    if rate * duration > 1_000_000:
        fail("--rate x --duration is at most 1,000,000 calls")
    if not 0 <= abandon <= 1:
        fail("--abandon is a fraction between 0 and 1")
    if not (math.isfinite(drain) and drain >= 0):
        fail("--drain must be 0 seconds or more")
    if not 1 <= concurrency <= 1000:
        fail("--concurrency must be between 1 and 1000")
    if operators == "all":
        how_many = None
    elif operators.isascii() and operators.isdigit():
        how_many = int(operators)
    else:
        fail(f"--operators takes 'all' or a number, not {operators!r}")
    choices = tuple(c.strip() for c in dtmf_choices.split(","))
    for choice in choices:
        if not set(choice) <= set("0123456789*#"):
            fail(f"--dtmf-choices keys are 0-9, * and #, not {choice!r}")
    plan = LoadPlan(
        base_url=base,
        auth=auth,
        rate=rate,
        duration=duration,
        numbers=tuple(to or ()),
        dtmf_choices=choices,
        abandon=abandon,
        patience=_seconds_range(patience, "--patience"),
        answer_delay=_seconds_range(answer_delay, "--answer-delay"),
        talk=_seconds_range(talk, "--talk"),
        operators=how_many,
        seed=seed,
        drain=drain,
        concurrency=concurrency,
        leave_online=leave_online,
    )
    summary = _run_load(plan)
    if as_json:
        print(json.dumps(summary))
    else:
        print_summary(summary)
    if summary["interrupted"]:
        raise typer.Exit(EXIT_INTERRUPTED)
    if summary["stream_error"]:
        print(f"error: {summary['stream_error']}", file=sys.stderr)
        raise typer.Exit(EXIT_STREAM_LOST)


def _run_load(plan: LoadPlan) -> dict[str, Any]:
    stderr = Console(stderr=True)
    progress = Progress(
        TextColumn("{task.description:>8}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
        disable=not stderr.is_terminal,
    )
    tasks = {
        name: progress.add_task(name, total=plan.max_calls)
        for name in ("placed", "answered", "ended")
    }

    async def main() -> dict[str, Any]:
        limits = httpx.Limits(
            max_connections=plan.concurrency, max_keepalive_connections=plan.concurrency
        )
        timeout = httpx.Timeout(REQUEST_TIMEOUT, pool=None)
        async with httpx.AsyncClient(
            base_url=plan.base_url, limits=limits, timeout=timeout
        ) as client:
            load = LoadRun(plan, client)
            loop = asyncio.get_running_loop()
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signal.SIGINT, _on_interrupt, loop, load)

            def show() -> None:
                counts = load.feed.counts
                progress.update(tasks["placed"], completed=counts.placed)
                progress.update(tasks["answered"], completed=counts.answered)
                progress.update(tasks["ended"], completed=counts.ended)

            try:
                with progress:
                    await load.run(show)
            finally:
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(signal.SIGINT)
            return summarize(load)

    try:
        return asyncio.run(main())
    except ApiError as exc:
        fail(exc.message)
    except KeyboardInterrupt:  # a second Ctrl-C
        print("error: interrupted", file=sys.stderr)
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _on_interrupt(loop: asyncio.AbstractEventLoop, load: LoadRun) -> None:
    """First Ctrl-C: stop and summarize; a second one: give up at once."""
    load.stop.set()
    loop.remove_signal_handler(signal.SIGINT)  # the default handler again: KeyboardInterrupt
