"""The IVR: a script of steps a caller goes through before reaching a group's queue.

``parse_ivr`` (``parsing.py``, where the JSON shape is documented) validates an administrator's
script into an ``IvrScript`` (``script.py``); an ``IvrSession`` (``session.py``) runs one call
through it as a pure state machine that the routing core drives with events and timestamps.
"""

from voicemgmt.domain.ivr.parsing import parse_ivr
from voicemgmt.domain.ivr.script import (
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
)
from voicemgmt.domain.ivr.session import (
    Finished,
    HangUp,
    HangUpReason,
    IvrAction,
    IvrSession,
    Outcome,
    PlayPrompt,
    RouteToGroup,
    StopPrompt,
)

__all__ = [
    "DIGITS",
    "RESERVED_VARIABLES",
    "AudioPrompt",
    "CollectStep",
    "Finished",
    "GroupTarget",
    "HangUp",
    "HangUpReason",
    "HangUpTarget",
    "IvrAction",
    "IvrScript",
    "IvrSession",
    "MenuStep",
    "Outcome",
    "PlayPrompt",
    "PlayStep",
    "Prompt",
    "RouteToGroup",
    "SpeechPrompt",
    "Step",
    "StepTarget",
    "StopPrompt",
    "Target",
    "parse_ivr",
]
