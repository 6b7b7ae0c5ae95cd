"""IVR scripts: the immutable ``IvrScript`` — steps (play, menu, collect), their prompts and
targets — that ``parse_ivr`` (``parsing.py``, where the JSON shape is documented) makes from an
administrator's JSON, and that an ``IvrSession`` runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

DIGITS = frozenset("0123456789*#")
DEFAULT_DURATION = 300.0
# Screen-pop query parameters and cnx.js notification fields (SPEC §3, §4).
RESERVED_VARIABLES = frozenset(
    {"id_session", "e164_in", "e164_out", "id_call", "caller_id_num", "action", "id_op"}
    | {"id_group", "id_groupe", "wait"}
)


@dataclass(frozen=True, slots=True)
class SpeechPrompt:
    """Text the telephony port speaks (text-to-speech)."""

    text: str

    def to_json(self) -> dict[str, str]:
        return {"text": self.text}


@dataclass(frozen=True, slots=True)
class AudioPrompt:
    """A sound file of the account's prompt library, by name (never a path)."""

    file: str

    def to_json(self) -> dict[str, str]:
        return {"audio": self.file}


Prompt = SpeechPrompt | AudioPrompt


@dataclass(frozen=True, slots=True)
class StepTarget:
    step_id: str


@dataclass(frozen=True, slots=True)
class GroupTarget:
    """Leave the IVR for this group's queue."""

    group_id: int


@dataclass(frozen=True, slots=True)
class HangUpTarget:
    pass


Target = StepTarget | GroupTarget | HangUpTarget


@dataclass(frozen=True, slots=True)
class PlayStep:
    id: str
    prompt: Prompt
    next: Target


@dataclass(frozen=True, slots=True)
class MenuStep:
    """One digit chooses an option; ``attempts`` invalid digits or timeouts lead to failure."""

    id: str
    prompt: Prompt | None
    options: Mapping[str, Target]
    timeout: float = 5.0
    attempts: int = 3
    invalid_prompt: Prompt | None = None
    timeout_prompt: Prompt | None = None
    on_failure: Target = HangUpTarget()


@dataclass(frozen=True, slots=True)
class CollectStep:
    """Digits typed into ``variable``; ``1 + retries`` tries before failure."""

    id: str
    prompt: Prompt | None
    variable: str
    next: Target
    min_length: int = 1
    max_length: int = 20
    terminator: str | None = "#"
    timeout: float = 5.0
    inter_digit_timeout: float = 3.0
    retries: int = 2
    pattern: re.Pattern[str] | None = None
    retry_prompt: Prompt | None = None
    on_failure: Target = HangUpTarget()

    def accepts(self, value: str) -> bool:
        """Whether ``value`` may be stored: length in bounds and the pattern fully matches."""
        return self.min_length <= len(value) <= self.max_length and (
            self.pattern is None or self.pattern.fullmatch(value) is not None
        )


Step = PlayStep | MenuStep | CollectStep


@dataclass(frozen=True, slots=True)
class IvrScript:
    """A validated script: every step reference resolves and no ``play`` loop exists."""

    start: str
    steps: Mapping[str, Step]
    max_duration: float = DEFAULT_DURATION

    @property
    def group_ids(self) -> frozenset[int]:
        """Groups the script routes to, for the caller to check they belong to the account."""
        return frozenset(
            t.group_id
            for step in self.steps.values()
            for _, t in targets(step)
            if isinstance(t, GroupTarget)
        )


def targets(step: Step) -> Iterator[tuple[str, Target]]:
    """Where a step may lead, each with the field that says so."""
    if isinstance(step, MenuStep):
        yield from ((f"options.{key}", target) for key, target in step.options.items())
    else:
        yield "next", step.next
    if not isinstance(step, PlayStep):
        yield "on_failure", step.on_failure
