"""IVR scripts: ``parse_ivr`` turns an administrator's JSON into an immutable ``IvrScript``.

Script (JSON; values shown are the defaults, ``?`` marks an optional field)::

    {"start": "<step id>",                      where every call begins
     "max_duration": 300,                       seconds in the IVR at most (10 to 3600)
     "steps": {"<step id>": STEP, ...}}         1 to 100 steps; ids: 1-64 of [A-Za-z0-9_.-]

    STEP  {"type": "play", "prompt": P, "next": T}
          {"type": "menu", "prompt": P?, "options": {"<digit>": T, ...}, "timeout": 5,
           "attempts": 3, "invalid_prompt": P?, "timeout_prompt": P?, "on_failure": T?}
          {"type": "collect", "prompt": P?, "variable": "<name>", "min_length": 1,
           "max_length": 20, "terminator": "#", "timeout": 5, "inter_digit_timeout": 3,
           "retries": 2, "pattern": "<regex>"?, "retry_prompt": P?, "next": T, "on_failure": T?}
    P     {"text": "<1-1000 characters to speak>"} or {"audio": "<file name>"}
    T     {"step": "<step id>"}, {"group": <id_group>} or {"hangup": true}

Rules: digits are ``0-9 * #``; timeouts are 0.5 to 60 s; ``attempts`` 1-10, ``retries`` 0-10;
lengths 0 to 32 with min ≤ max; ``terminator`` is ``"#"``, ``"*"`` or ``null`` (none);
``variable`` matches ``[a-z][a-z0-9_]{0,31}`` and is not a screen-pop parameter name;
``pattern`` must fully match the digits, is at most 100 characters with at most 4 repetition
operators (``? * + {``), none right after a group, and at most 4 ``|``: so matching stays
fast whatever an administrator writes. ``play`` steps must not form a loop: every other loop
waits for the caller, and ``max_duration`` bounds them all. ``on_failure`` defaults to
hanging up. Group ids are not checked here: see ``IvrScript.group_ids``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from voicemgmt.domain.directory import has_control_characters
from voicemgmt.domain.errors import InvalidInput
from voicemgmt.domain.ivr.script import (
    DEFAULT_DURATION,
    DIGITS,
    RESERVED_VARIABLES,
    AudioPrompt,
    CollectStep,
    GroupTarget,
    HangUpTarget,
    IvrScript,
    MenuStep,
    PlayStep,
    Prompt,
    SpeechPrompt,
    Step,
    StepTarget,
    Target,
    targets,
)

TERMINATORS = ("#", "*")
MAX_STEPS = 100
MAX_PROMPT_TEXT = 1000
MAX_DIGITS = 32
MAX_PATTERN = 100
MAX_PATTERN_REPEATS = 4
MAX_PATTERN_BRANCHES = 4
MIN_TIMEOUT, MAX_TIMEOUT = 0.5, 60.0
MAX_ATTEMPTS = 10
MIN_DURATION, MAX_DURATION = 10.0, 3600.0
MAX_GROUP_ID = 2**31 - 1
_STEP_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_VARIABLE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_AUDIO_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")

_STEP_FIELDS = {
    "play": ({"type", "prompt", "next"}, {"prompt", "next"}),
    "menu": (
        {"type", "prompt", "options", "timeout", "attempts", "invalid_prompt"}
        | {"timeout_prompt", "on_failure"},
        {"options"},
    ),
    "collect": (
        {"type", "prompt", "variable", "min_length", "max_length", "terminator", "timeout"}
        | {"inter_digit_timeout", "retries", "pattern", "retry_prompt", "next", "on_failure"},
        {"variable", "next"},
    ),
}
_TARGET_SHAPE = 'must be {"step": id}, {"group": id_group} or {"hangup": true}'


def _error(where: str, path: str, problem: str) -> InvalidInput:
    return InvalidInput(f"{where}: {problem}" if where else problem, field=path or "ivr")


def _join(path: str, name: object) -> str:
    return f"{path}.{name}" if path else str(name)


def _check_fields(
    raw: object, where: str, path: str, allowed: set[str], required: set[str]
) -> dict[str, object]:
    if not isinstance(raw, dict):
        raise _error(where, path, "must be a JSON object")
    for name in raw:
        if name not in allowed:
            raise _error(where, _join(path, name), f"unknown field {str(name)[:64]!r}")
    missing = sorted(required - raw.keys())
    if missing:
        raise _error(where, _join(path, missing[0]), f"{missing[0]} is required")
    return raw


class _StepReader:
    """Reads one step's fields, naming the step and field in every error."""

    def __init__(self, step_id: str, raw: dict[str, object]) -> None:
        self.step_id, self.raw = step_id, raw

    def error(self, name: str, problem: str) -> InvalidInput:
        return _error(f"step {self.step_id!r}", f"steps.{self.step_id}.{name}", f"{name} {problem}")

    def number(self, name: str, default: float, low: float, high: float) -> float:
        value = self.raw.get(name, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            raise self.error(name, f"must be a number from {low:g} to {high:g}")
        return float(value)

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.raw.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.error(name, f"must be a whole number from {low} to {high}")
        return value

    def prompt(self, name: str) -> Prompt | None:
        raw = self.raw.get(name)
        if raw is None:
            return None
        if not isinstance(raw, dict) or len(raw) != 1 or not raw.keys() <= {"text", "audio"}:
            raise self.error(name, 'must be {"text": ...} or {"audio": file name}')
        ((kind, text),) = raw.items()
        if kind == "audio":
            if not isinstance(text, str) or not _AUDIO_FILE.fullmatch(text):
                raise self.error(
                    name, "audio must be a file name of letters, digits, '.', '_', '-'"
                )
            return AudioPrompt(text)
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_PROMPT_TEXT:
            raise self.error(name, f"text must be 1 to {MAX_PROMPT_TEXT} characters")
        if has_control_characters(text):
            raise self.error(name, "text must not contain control characters")
        return SpeechPrompt(text)

    def target(self, name: str, raw: object) -> Target:
        if isinstance(raw, dict) and len(raw) == 1:
            ((key, value),) = raw.items()
            if key == "step" and isinstance(value, str):
                return StepTarget(value)
            if key == "group" and type(value) is int and 1 <= value <= MAX_GROUP_ID:
                return GroupTarget(value)
            if key == "hangup" and value is True:
                return HangUpTarget()
        raise self.error(name, _TARGET_SHAPE)

    def optional_target(self, name: str) -> Target:
        return HangUpTarget() if name not in self.raw else self.target(name, self.raw[name])

    def pattern(self) -> re.Pattern[str] | None:
        raw = self.raw.get("pattern")
        if raw is None:
            return None
        if not isinstance(raw, str) or not raw.isascii() or not 1 <= len(raw) <= MAX_PATTERN:
            raise self.error("pattern", f"must be 1 to {MAX_PATTERN} ASCII characters")
        # Python's regex engine backtracks: bound what a 32-digit input can cost.
        repeats, branches, in_class, previous, i = 0, 0, False, "", 0
        while i < len(raw):
            char = raw[i]
            if char == "\\":
                char, i = "a", i + 1  # an escaped character is one plain atom
            elif in_class:
                # Nested sets and doubled -|&~ are reserved syntax (FutureWarning).
                if char == "[" or (char in "-|&~" and previous == char):
                    raise self.error("pattern", "must not nest or combine character classes")
                in_class = char != "]"
            elif char == "[":
                in_class = True
            elif char == "|":
                branches += 1
            elif char in "?*+{" and previous != "(":
                if previous == ")":
                    raise self.error("pattern", "must not repeat a group: repeat characters")
                repeats += 1
            previous, i = char, i + 1
        if repeats > MAX_PATTERN_REPEATS or branches > MAX_PATTERN_BRANCHES:
            raise self.error(
                "pattern",
                f"may use at most {MAX_PATTERN_REPEATS} repetitions (? * + {{) "
                f"and {MAX_PATTERN_BRANCHES} '|'",
            )
        try:
            return re.compile(raw)
        except re.error as exc:
            raise self.error("pattern", f"is not a valid regular expression: {exc}") from exc

    def step(self) -> Step:
        kind = self.raw.get("type")
        if not isinstance(kind, str) or kind not in _STEP_FIELDS:
            raise self.error("type", "must be 'play', 'menu' or 'collect'")
        allowed, required = _STEP_FIELDS[kind]
        _check_fields(
            self.raw, f"step {self.step_id!r}", f"steps.{self.step_id}", allowed, required
        )
        timeout = self.number("timeout", 5.0, MIN_TIMEOUT, MAX_TIMEOUT)
        if kind == "play":
            prompt = self.prompt("prompt")
            if prompt is None:
                raise self.error("prompt", "is required")
            return PlayStep(self.step_id, prompt, self.target("next", self.raw["next"]))
        if kind == "menu":
            return MenuStep(
                self.step_id,
                self.prompt("prompt"),
                self.options(),
                timeout=timeout,
                attempts=self.integer("attempts", 3, 1, MAX_ATTEMPTS),
                invalid_prompt=self.prompt("invalid_prompt"),
                timeout_prompt=self.prompt("timeout_prompt"),
                on_failure=self.optional_target("on_failure"),
            )
        return self.collect(timeout)

    def options(self) -> Mapping[str, Target]:
        raw = self.raw["options"]
        if not isinstance(raw, dict) or not raw:
            raise self.error("options", "must map at least one digit to a target")
        options: dict[str, Target] = {}
        for key, value in raw.items():
            if key not in DIGITS:
                raise self.error(f"options.{str(key)[:8]}", "must be one digit among 0-9, * and #")
            options[key] = self.target(f"options.{key}", value)
        return MappingProxyType(options)

    def collect(self, timeout: float) -> CollectStep:
        variable = self.raw["variable"]
        if not isinstance(variable, str) or not _VARIABLE.fullmatch(variable):
            raise self.error("variable", "must match [a-z][a-z0-9_]{0,31}")
        if variable in RESERVED_VARIABLES:
            raise self.error("variable", f"{variable!r} is a screen-pop parameter name")
        max_length = self.integer("max_length", 20, 1, MAX_DIGITS)
        min_length = self.integer("min_length", 1, 0, MAX_DIGITS)
        if min_length > max_length:
            raise self.error("min_length", f"must not exceed max_length ({max_length})")
        terminator = self.raw.get("terminator", "#")
        if terminator is not None and terminator not in TERMINATORS:
            raise self.error("terminator", "must be '#', '*' or null")
        return CollectStep(
            self.step_id,
            self.prompt("prompt"),
            variable,
            self.target("next", self.raw["next"]),
            min_length=min_length,
            max_length=max_length,
            terminator=terminator,
            timeout=timeout,
            inter_digit_timeout=self.number("inter_digit_timeout", 3.0, MIN_TIMEOUT, MAX_TIMEOUT),
            retries=self.integer("retries", 2, 0, MAX_ATTEMPTS),
            pattern=self.pattern(),
            retry_prompt=self.prompt("retry_prompt"),
            on_failure=self.optional_target("on_failure"),
        )


def parse_prompt(raw: object) -> Prompt:
    """One prompt, ``{"text": ...}`` or ``{"audio": file name}``, checked as a script's are;
    raises ``InvalidInput``."""
    prompt = _StepReader("prompt", {"prompt": raw}).prompt("prompt")
    if prompt is None:
        raise _error("", "prompt", "a prompt is required")
    return prompt


def parse_ivr(config: object) -> IvrScript:
    """Validate an administrator's script; raises ``InvalidInput`` naming the step and field."""
    raw = _check_fields(config, "ivr", "", {"start", "steps", "max_duration"}, {"start", "steps"})
    duration = raw.get("max_duration", DEFAULT_DURATION)
    if (
        isinstance(duration, bool)
        or not isinstance(duration, int | float)
        or not MIN_DURATION <= duration <= MAX_DURATION
    ):
        raise _error(
            "", "max_duration", f"max_duration must be {MIN_DURATION:g} to {MAX_DURATION:g} s"
        )
    raw_steps = raw["steps"]
    if not isinstance(raw_steps, dict) or not 1 <= len(raw_steps) <= MAX_STEPS:
        raise _error("", "steps", f"steps must map 1 to {MAX_STEPS} step ids to steps")
    steps: dict[str, Step] = {}
    for step_id, raw_step in raw_steps.items():
        if not isinstance(step_id, str) or not _STEP_ID.fullmatch(step_id):
            raise _error(
                "", "steps", f"step id {str(step_id)[:64]!r} must be 1-64 of [A-Za-z0-9_.-]"
            )
        if not isinstance(raw_step, dict):
            raise _error(f"step {step_id!r}", f"steps.{step_id}", "must be a JSON object")
        steps[step_id] = _StepReader(step_id, raw_step).step()
    start = raw["start"]
    if not isinstance(start, str) or start not in steps:
        raise _error("", "start", f"start must name one of the steps, not {str(start)[:64]!r}")
    for step in steps.values():
        for name, target in targets(step):
            if isinstance(target, StepTarget) and target.step_id not in steps:
                raise _error(
                    f"step {step.id!r}",
                    f"steps.{step.id}.{name}",
                    f"{name} refers to unknown step {target.step_id[:64]!r}",
                )
    for step in steps.values():
        seen = [step.id]
        current: Step = step
        while isinstance(current, PlayStep) and isinstance(current.next, StepTarget):
            current = steps[current.next.step_id]
            if current.id in seen:
                loop = " -> ".join([*seen[seen.index(current.id) :], current.id])
                raise _error(
                    f"step {seen[-1]!r}",
                    f"steps.{seen[-1]}.next",
                    f"play steps loop forever without caller input ({loop})",
                )
            seen.append(current.id)
    return IvrScript(start, MappingProxyType(steps), float(duration))
