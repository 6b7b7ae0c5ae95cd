"""An IVR session saved (``IvrSession.save``) and loaded back over its script (``load``)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_ivr import EXAMPLE, press, waiting_in, with_step
from voicemgmt.domain.errors import InvalidSavedState, NoSuchIvrStep
from voicemgmt.domain.ivr import (
    Finished,
    IvrAction,
    IvrSession,
    RouteToGroup,
    parse_ivr,
)

SCRIPT = parse_ivr(EXAMPLE)


def reloaded(session: IvrSession, script: Any = SCRIPT) -> IvrSession:
    saved = json.loads(json.dumps(session.save(), allow_nan=False))
    return IvrSession.load(script, session.call_id, saved)


def same_from_now_on(a: IvrSession, b: IvrSession, events: list[tuple[Any, ...]]) -> None:
    for event in events:
        assert feed(a, event) == feed(b, event), event
        assert (a.deadline, a.outcome, a.variables, a.path) == (
            b.deadline,
            b.outcome,
            b.variables,
            b.path,
        )


def feed(session: IvrSession, event: tuple[Any, ...]) -> list[IvrAction]:
    kind, now = event[0], event[1]
    if kind == "digit":
        return session.digit(now, event[2])
    if kind == "prompt_finished":
        return session.prompt_finished(now)
    return session.timeout(now)


def test_a_session_saved_mid_menu_goes_on_as_the_original() -> None:
    session = waiting_in("menu")
    press(session, 2.0, "7")  # invalid: the notice, then the menu again, are to play
    copy_ = reloaded(session)
    assert copy_.save() == session.save()
    assert copy_.deadline == session.deadline
    same_from_now_on(
        session,
        copy_,
        [("prompt_finished", 3.0), ("digit", 3.5, "2"), ("prompt_finished", 5.0)]
        + [("digit", 6.0 + i / 10, d) for i, d in enumerate("123456#")],
    )
    assert session.outcome == RouteToGroup(3, {"order_number": "123456"})


def test_a_session_saved_while_typing_keeps_its_digits_and_deadline() -> None:
    session = waiting_in("order")
    press(session, 2.0, "123")
    copy_ = reloaded(session)
    assert copy_.deadline == 5.0  # the inter-digit timeout, from the last digit
    same_from_now_on(session, copy_, [("digit", 3.0, "4"), ("digit", 3.5, "5")])
    # The pause after five digits (min 6) is a failed try, in both.
    same_from_now_on(session, copy_, [("timeout", 7.0), ("prompt_finished", 8.0)])


def test_a_finished_session_is_saved_with_its_outcome() -> None:
    session = waiting_in("menu")
    actions = press(session, 2.0, "1")
    assert actions[-1] == Finished(RouteToGroup(3, {}))
    copy_ = reloaded(session)
    assert copy_.outcome == RouteToGroup(3, {})
    assert copy_.deadline is None
    assert copy_.digit(3.0, "1") == []


events = st.lists(
    st.one_of(
        st.tuples(
            st.just("digit"), st.sampled_from([0.0, 0.5, 2.0, 4.0]), st.sampled_from("0127#")
        ),
        st.tuples(st.just("prompt_finished"), st.sampled_from([0.0, 1.0, 3.0])),
        st.tuples(st.just("timeout"), st.sampled_from([1.0, 3.0, 9.0])),
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(events, st.data())
def test_a_session_saved_at_any_moment_goes_on_as_the_original(
    steps: list[tuple[Any, ...]], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(steps)), label="cut")
    timed: list[tuple[Any, ...]] = []
    now = 0.0
    for step in steps:  # times never go back: each step waits its delay first
        now += step[1]
        timed.append((step[0], now, *step[2:]))
    session = IvrSession(SCRIPT, "call-1")
    session.start(0.0)
    for event in timed[:cut]:
        feed(session, event)
    same_from_now_on(session, reloaded(session), timed[cut:])


def test_a_step_deleted_from_the_script_is_told() -> None:
    session = waiting_in("order")
    edited = {**EXAMPLE, "steps": {k: v for k, v in EXAMPLE["steps"].items() if k != "order"}}
    edited["steps"]["menu"] = {**EXAMPLE["steps"]["menu"], "options": {"1": {"group": 3}}}
    with pytest.raises(NoSuchIvrStep) as raised:
        reloaded(session, parse_ivr(edited))
    assert raised.value.details == {"step": "order"}
    assert IvrSession.saved_variables(session.save()) == {}


def test_a_step_that_changed_kind_is_told() -> None:
    session = waiting_in("order")
    edited = with_step("order", type="menu", options={"1": {"group": 3}}, variable=None)
    edited["steps"]["order"] = {
        k: v for k, v in edited["steps"]["order"].items() if k in ("type", "options", "timeout")
    }
    with pytest.raises(NoSuchIvrStep):
        reloaded(session, parse_ivr(edited))


def _set(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(saved: dict[str, Any]) -> None:
        saved[name] = value

    return change


def _drop(name: str) -> Callable[[dict[str, Any]], None]:
    def change(saved: dict[str, Any]) -> None:
        del saved[name]

    return change


HOSTILE = {
    "another format": _set("format", 2),
    "format as text": _set("format", "1"),
    "a missing field": _drop("typed"),
    "an unknown field": _set("script", {}),
    "step not a string": _set("step", 7),
    "an unknown kind": _set("kind", "voicemail"),
    "prompts not a list": _set("prompts", {"text": "hi"}),
    "a prompt of control characters": _set("prompts", [{"text": "\x00"}]),
    "a prompt path": _set("prompts", [{"audio": "../../etc/passwd"}]),
    "three prompts": _set("prompts", [{"text": "a"}, {"text": "b"}, {"text": "c"}]),
    "a negative deadline": _set("deadline", -1),
    "an infinite deadline": _set("deadline", float("inf")),
    "a huge deadline": _set("deadline", 1e300),
    "a deadline as text": _set("deadline", "soon"),
    "failures negative": _set("failures", -1),
    "failures huge": _set("failures", 10**9),
    "failures a boolean": _set("failures", True),
    "typed letters": _set("typed", "12ab"),
    "typed too long": _set("typed", "1" * 33),
    "variables of numbers": _set("variables", {"order_number": 123456}),
    "variables a list": _set("variables", ["x"]),
    "path of numbers": _set("path", [1, 2]),
    "started_at negative": _set("started_at", -5.0),
    "an outcome of nothing known": _set("outcome", {"voicemail": True}),
    "an outcome to group 0": _set("outcome", {"group": 0}),
    "an outcome of an unknown reason": _set("outcome", {"hangup": "bored"}),
    "an outcome of two kinds": _set("outcome", {"group": 3, "hangup": "ivr_hangup"}),
    "an outcome of a number": _set("outcome", 3),
}


@pytest.mark.parametrize("change", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_malformed_saved_session_is_refused_clearly(
    change: Callable[[dict[str, Any]], None],
) -> None:
    saved = waiting_in("order").save()
    bad = copy.deepcopy(saved)
    change(bad)
    with pytest.raises(InvalidSavedState) as raised:
        IvrSession.load(SCRIPT, "call-1", bad)
    assert raised.value.details["field"].startswith("ivr")


@pytest.mark.parametrize("saved", [None, [], "ivr", 3, {}], ids=repr)
def test_a_saved_session_that_is_no_object_is_refused(saved: object) -> None:
    with pytest.raises(InvalidSavedState):
        IvrSession.load(SCRIPT, "call-1", saved)
