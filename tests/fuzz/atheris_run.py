"""Coverage-guided fuzzing of the byte-level targets: atheris (libFuzzer) drives their
hypothesis tests through ``fuzz_one_input``, so it mutates the choices behind the same
corpus-seeded strategies and keeps what reaches new code of the instrumented modules.

    python -m tests.fuzz.atheris_run sip -runs=100000   # any libFuzzer option after the name

``make fuzz`` runs each target (ATHERIS_RUNS). A crash prints its traceback and exits non-zero;
keep it as a corpus case or an ``@example`` of the test, then fix it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

import atheris

# target → (modules to instrument, "test module:test function")
TARGETS: dict[str, tuple[tuple[str, ...], str]] = {
    "sip": (
        ("voicemgmt.adapters.switch.sip.message", "voicemgmt.adapters.switch.sip.uri"),
        "tests.fuzz.test_sip_parsers:test_sip_messages_raise_nothing_but_a_syntax_error_and_round_trip",
    ),
    "sdp": (
        ("voicemgmt.adapters.switch.sip.sdp",),
        "tests.fuzz.test_sip_parsers:test_sdp_raises_nothing_but_sdp_error_and_round_trips",
    ),
    "digest": (
        ("voicemgmt.adapters.switch.sip.digest",),
        "tests.fuzz.test_sip_parsers:test_digest_headers_are_read_or_refused_never_crash",
    ),
    "rtp": (
        ("voicemgmt.adapters.switch.sip.rtp",),
        "tests.fuzz.test_rtp:test_rtp_headers_are_read_or_refused_and_the_payload_is_inside",
    ),
    "dtmf": (
        ("voicemgmt.adapters.switch.sip.rtp",),
        "tests.fuzz.test_rtp:test_a_dtmf_receiver_reports_one_digit_per_event_whatever_arrives",
    ),
    "json": (
        ("voicemgmt.web.json_body",),
        "tests.fuzz.test_json_bodies:test_parse_json_gives_a_serialisable_value_or_invalid_json",
    ),
}


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] not in TARGETS:
        raise SystemExit(f"usage: {argv[0]} {{{','.join(TARGETS)}}} [libFuzzer options]")
    modules, test = TARGETS[argv[1]]
    with atheris.instrument_imports():
        for name in modules:
            importlib.import_module(name)
    module_name, _, function = test.partition(":")
    target: Any = getattr(importlib.import_module(module_name), function)
    fuzz_one_input: Callable[[bytes], object] = target.hypothesis.fuzz_one_input
    atheris.Setup([argv[0], *argv[2:]], fuzz_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
