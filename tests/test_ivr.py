"""The IVR: scripts an administrator writes, and what a caller goes through in one."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voicemgmt.domain.errors import InvalidInput
from voicemgmt.domain.ivr import (
    AudioPrompt,
    CollectStep,
    Finished,
    GroupTarget,
    HangUp,
    HangUpReason,
    HangUpTarget,
    IvrAction,
    IvrScript,
    IvrSession,
    MenuStep,
    PlayPrompt,
    PlayStep,
    RouteToGroup,
    SpeechPrompt,
    StepTarget,
    StopPrompt,
    parse_ivr,
)
from voicemgmt.domain.ivr.parsing import MIN_TIMEOUT

WELCOME = {"text": "Welcome to Acme"}
MENU = {"audio": "menu.wav"}
INVALID = {"text": "Invalid choice"}
PLEASE = {"text": "Please choose"}
ASK = {"text": "Type your order number then hash"}
RETRY = {"text": "That number is not valid"}

EXAMPLE: dict[str, Any] = {
    "start": "welcome",
    "steps": {
        "welcome": {"type": "play", "prompt": WELCOME, "next": {"step": "menu"}},
        "menu": {
            "type": "menu",
            "prompt": MENU,
            "options": {"1": {"group": 3}, "2": {"step": "order"}, "0": {"hangup": True}},
            "timeout": 5,
            "attempts": 3,
            "invalid_prompt": INVALID,
            "timeout_prompt": PLEASE,
            "on_failure": {"group": 4},
        },
        "order": {
            "type": "collect",
            "prompt": ASK,
            "variable": "order_number",
            "min_length": 6,
            "max_length": 10,
            "terminator": "#",
            "timeout": 8,
            "inter_digit_timeout": 3,
            "retries": 2,
            "pattern": "^[0-9]+$",
            "retry_prompt": RETRY,
            "next": {"group": 3},
            "on_failure": {"group": 4},
        },
    },
}


def with_step(step_id: str, **changes: Any) -> dict[str, Any]:
    """EXAMPLE with one step's fields changed (a value of None removes the field)."""
    steps = {k: dict(v) for k, v in EXAMPLE["steps"].items()}
    steps[step_id].update(changes)
    steps[step_id] = {k: v for k, v in steps[step_id].items() if v is not None}
    return {**EXAMPLE, "steps": steps}


def session_at(step_id: str, config: dict[str, Any] | None = None) -> IvrSession:
    """A session started at ``step_id`` at time 0 (its prompt playing, if it has one)."""
    session = IvrSession(parse_ivr({**(config or EXAMPLE), "start": step_id}), "call-1")
    session.start(0.0)
    return session


def waiting_in(step_id: str, config: dict[str, Any] | None = None) -> IvrSession:
    """A session at ``step_id`` whose prompt finished at time 1: waiting for the caller."""
    session = session_at(step_id, config)
    session.prompt_finished(1.0)
    return session


def press(session: IvrSession, now: float, keys: str) -> list[IvrAction]:
    return [action for key in keys for action in session.digit(now, key)]


def speech(text: str) -> PlayPrompt:
    return PlayPrompt(SpeechPrompt(text), interruptible=True)


# --- Parsing ------------------------------------------------------------------------------


def test_the_documented_example_parses_into_typed_steps() -> None:
    script = parse_ivr(EXAMPLE)
    assert script.start == "welcome"
    assert script.max_duration == 300
    assert script.steps["welcome"] == PlayStep(
        "welcome", SpeechPrompt("Welcome to Acme"), StepTarget("menu")
    )
    menu = script.steps["menu"]
    assert isinstance(menu, MenuStep)
    assert menu.prompt == AudioPrompt("menu.wav")
    assert dict(menu.options) == {
        "1": GroupTarget(3),
        "2": StepTarget("order"),
        "0": HangUpTarget(),
    }
    order = script.steps["order"]
    assert isinstance(order, CollectStep)
    assert (order.variable, order.min_length, order.max_length) == ("order_number", 6, 10)
    assert script.group_ids == {3, 4}


def test_prompts_serialise_back_to_their_json_shape() -> None:
    welcome = parse_ivr(EXAMPLE).steps["welcome"]
    menu = parse_ivr(EXAMPLE).steps["menu"]
    assert isinstance(welcome, PlayStep)
    assert isinstance(menu, MenuStep)
    assert menu.prompt is not None
    assert (welcome.prompt.to_json(), menu.prompt.to_json()) == (WELCOME, MENU)


def test_optional_fields_take_their_defaults() -> None:
    script = parse_ivr(
        {
            "start": "m",
            "steps": {
                "m": {"type": "menu", "options": {"1": {"step": "c"}}},
                "c": {"type": "collect", "variable": "code", "next": {"group": 1}},
            },
        }
    )
    assert script.steps["m"] == MenuStep("m", None, {"1": StepTarget("c")})
    assert script.steps["c"] == CollectStep("c", None, "code", GroupTarget(1))
    menu = script.steps["m"]
    assert isinstance(menu, MenuStep)
    assert (menu.timeout, menu.attempts, menu.on_failure) == (5.0, 3, HangUpTarget())


def test_loops_through_caller_input_are_allowed() -> None:
    config = with_step("menu", options={"9": {"step": "welcome"}}, on_failure={"step": "menu"})
    assert parse_ivr(config).steps["menu"].id == "menu"


def test_group_ids_lists_every_group_the_script_can_route_to() -> None:
    assert parse_ivr(with_step("order", on_failure={"hangup": True})).group_ids == {3, 4}


PLAY_LOOP = {
    "start": "a",
    "steps": {
        "a": {"type": "play", "prompt": WELCOME, "next": {"step": "b"}},
        "b": {"type": "play", "prompt": WELCOME, "next": {"step": "a"}},
    },
}
SELF_LOOP = {
    "start": "a",
    "steps": {"a": {"type": "play", "prompt": WELCOME, "next": {"step": "a"}}},
}


@pytest.mark.parametrize(
    ("config", "fragment", "field"),
    [
        ([], "must be a JSON object", "ivr"),
        ({"steps": EXAMPLE["steps"]}, "start is required", "start"),
        ({**EXAMPLE, "version": 2}, "unknown field 'version'", "version"),
        ({**EXAMPLE, "start": "nowhere"}, "start must name one of the steps", "start"),
        ({**EXAMPLE, "max_duration": 0}, "max_duration must be 10 to 3600", "max_duration"),
        ({**EXAMPLE, "max_duration": True}, "max_duration must be", "max_duration"),
        ({**EXAMPLE, "max_duration": math.inf}, "max_duration must be", "max_duration"),
        ({**EXAMPLE, "steps": {}}, "steps must map 1 to 100", "steps"),
        (
            {
                "start": "s0",
                "steps": {
                    f"s{i}": {"type": "play", "prompt": WELCOME, "next": {"hangup": True}}
                    for i in range(101)
                },
            },
            "steps must map 1 to 100",
            "steps",
        ),
        ({**EXAMPLE, "steps": {"bad id": {}}}, "step id 'bad id'", "steps"),
        ({**EXAMPLE, "steps": {"a": "play"}}, "step 'a': must be a JSON object", "steps.a"),
        (with_step("welcome", type="record"), "step 'welcome': type must be", "steps.welcome.type"),
        (with_step("welcome", type=["play"]), "type must be", "steps.welcome.type"),
        (with_step("welcome", timout=5), "unknown field 'timout'", "steps.welcome.timout"),
        (with_step("welcome", next=None), "next is required", "steps.welcome.next"),
        (with_step("welcome", prompt=None), "prompt is required", "steps.welcome.prompt"),
        (
            {"start": "a", "steps": {"a": {"type": "play", "prompt": None, "next": {"group": 1}}}},
            "step 'a': prompt is required",
            "steps.a.prompt",
        ),
        (
            with_step("welcome", next={"step": "menuu"}),
            "unknown step 'menuu'",
            "steps.welcome.next",
        ),
        (with_step("welcome", next={"group": 0}), "next must be {", "steps.welcome.next"),
        (with_step("welcome", next={"group": "3"}), "next must be {", "steps.welcome.next"),
        (with_step("welcome", next={"hangup": False}), "next must be {", "steps.welcome.next"),
        (
            with_step("welcome", next={"group": 3, "hangup": True}),
            "next must be {",
            "steps.welcome.next",
        ),
        (with_step("welcome", prompt={"video": "x.mp4"}), "prompt must be", "steps.welcome.prompt"),
        (
            with_step("welcome", prompt={"text": "a", "audio": "b.wav"}),
            "prompt must be",
            "steps.welcome.prompt",
        ),
        (
            with_step("welcome", prompt={"text": ""}),
            "text must be 1 to 1000",
            "steps.welcome.prompt",
        ),
        (
            with_step("welcome", prompt={"text": "x" * 1001}),
            "text must be 1 to 1000",
            "steps.welcome.prompt",
        ),
        (
            with_step("welcome", prompt={"text": "a\x00b"}),
            "control characters",
            "steps.welcome.prompt",
        ),
        (
            with_step("welcome", prompt={"audio": "../../etc/passwd"}),
            "audio must be a file name",
            "steps.welcome.prompt",
        ),
        (
            PLAY_LOOP,
            "step 'b': play steps loop forever without caller input (a -> b -> a)",
            "steps.b.next",
        ),
        (SELF_LOOP, "loop forever without caller input (a -> a)", "steps.a.next"),
        (with_step("menu", options={}), "options must map at least one", "steps.menu.options"),
        (
            with_step("menu", options={"12": {"group": 3}}),
            "options.12 must be one digit among 0-9, * and #",
            "steps.menu.options.12",
        ),
        (
            with_step("menu", options={"A": {"group": 3}}),
            "must be one digit",
            "steps.menu.options.A",
        ),
        (
            with_step("menu", options={"2": {"step": "nowhere"}}),
            "options.2 refers to unknown step 'nowhere'",
            "steps.menu.options.2",
        ),
        (
            with_step("menu", timeout=0),
            "timeout must be a number from 0.5 to 60",
            "steps.menu.timeout",
        ),
        (with_step("menu", timeout="5"), "timeout must be a number", "steps.menu.timeout"),
        (with_step("menu", timeout=math.nan), "timeout must be a number", "steps.menu.timeout"),
        (
            with_step("menu", attempts=0),
            "attempts must be a whole number from 1 to 10",
            "steps.menu.attempts",
        ),
        (with_step("menu", attempts=2.5), "attempts must be a whole number", "steps.menu.attempts"),
        (
            with_step("menu", on_failure={"step": "gone"}),
            "on_failure refers to unknown step 'gone'",
            "steps.menu.on_failure",
        ),
        (with_step("order", variable="Order"), "variable must match", "steps.order.variable"),
        (with_step("order", variable="a" * 33), "variable must match", "steps.order.variable"),
        (
            with_step("order", variable="id_call"),
            "'id_call' is a screen-pop parameter name",
            "steps.order.variable",
        ),
        (with_step("order", variable="wait"), "screen-pop parameter", "steps.order.variable"),
        (
            with_step("order", min_length=11),
            "min_length must not exceed max_length (10)",
            "steps.order.min_length",
        ),
        (
            with_step("order", max_length=0),
            "max_length must be a whole number from 1 to 32",
            "steps.order.max_length",
        ),
        (with_step("order", max_length=33), "max_length must be", "steps.order.max_length"),
        (
            with_step("order", retries=11),
            "retries must be a whole number from 0 to 10",
            "steps.order.retries",
        ),
        (
            with_step("order", terminator="5"),
            "terminator must be '#', '*' or null",
            "steps.order.terminator",
        ),
        (
            with_step("order", inter_digit_timeout=61),
            "inter_digit_timeout must be a number from 0.5 to 60",
            "steps.order.inter_digit_timeout",
        ),
        (
            with_step("order", pattern="[0-9"),
            "pattern is not a valid regular expression",
            "steps.order.pattern",
        ),
        (with_step("order", pattern=""), "pattern must be 1 to 100 ASCII", "steps.order.pattern"),
        (with_step("order", pattern="٣+"), "pattern must be 1 to 100 ASCII", "steps.order.pattern"),
        (
            with_step("order", pattern=r"\d?" * 30),
            "pattern may use at most 4 repetitions",
            "steps.order.pattern",
        ),
        (with_step("order", pattern=r"(\d+)+$"), "must not repeat a group", "steps.order.pattern"),
        (
            with_step("order", pattern="(1|2|3|4|5|6|7|8|9|0)"),
            "and 4 '|'",
            "steps.order.pattern",
        ),
        (with_step("order", pattern="[[0-9]]"), "must not nest", "steps.order.pattern"),
        (with_step("order", retry_prompt={"text": 3}), "text must be", "steps.order.retry_prompt"),
    ],
)
def test_invalid_scripts_are_refused_naming_step_and_field(
    config: object, fragment: str, field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_ivr(config)
    assert fragment in caught.value.message
    assert caught.value.details == {"field": field}


@pytest.mark.parametrize(
    "pattern",
    [r"^\d{6,10}$", r"^(?:33|44)\d+$", r"\(?[0-9]+\)?", r"[0-9*]{2}#?", r"\\d|\d"],
)
def test_usual_patterns_are_accepted(pattern: str) -> None:
    step = parse_ivr(with_step("order", pattern=pattern)).steps["order"]
    assert isinstance(step, CollectStep)
    assert step.pattern is not None


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 40) | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
STEP_FIELDS = st.sampled_from(
    [
        *("type", "prompt", "next", "options", "timeout", "attempts", "variable", "min_length"),
        *("max_length", "terminator", "pattern", "retries", "on_failure", "invalid_prompt"),
    ]
)


@given(st.dictionaries(STEP_FIELDS, JSON | st.sampled_from(["play", "menu", "collect"])))
def test_any_step_is_either_accepted_or_refused_clearly(raw_step: dict[str, Any]) -> None:
    try:
        parse_ivr({"start": "s", "steps": {"s": raw_step}})
    except InvalidInput as exc:
        field = str(exc.details["field"])
    else:
        return
    assert field == "steps" or field.startswith("steps.s")


# --- Play steps ---------------------------------------------------------------------------


def test_a_session_does_nothing_until_started() -> None:
    session = IvrSession(parse_ivr(EXAMPLE), "call-1")
    assert session.deadline is None
    assert session.path == ()
    assert session.digit(0.0, "1") == []
    assert session.timeout(999.0) == []
    assert session.outcome is None


def test_a_play_step_plays_its_prompt_uninterruptibly_then_moves_on() -> None:
    session = IvrSession(parse_ivr(EXAMPLE), "call-1")
    assert session.start(0.0) == [PlayPrompt(SpeechPrompt("Welcome to Acme"), False)]
    assert session.prompt_finished(2.0) == [PlayPrompt(AudioPrompt("menu.wav"), True)]
    assert session.path == ("welcome", "menu")


def test_digits_during_a_play_step_are_ignored_not_buffered() -> None:
    session = session_at("welcome")
    assert session.digit(0.5, "1") == []
    session.prompt_finished(2.0)
    session.prompt_finished(3.0)  # the menu prompt ends: now waiting for a choice
    assert session.outcome is None
    assert session.deadline == 8.0


def test_starting_twice_changes_nothing() -> None:
    session = session_at("welcome")
    assert session.start(1.0) == []
    assert session.path == ("welcome",)


# --- Menus --------------------------------------------------------------------------------


def test_a_valid_choice_routes_to_its_group() -> None:
    session = waiting_in("menu")
    finished = Finished(RouteToGroup(3, {}))
    assert session.digit(2.0, "1") == [finished]
    assert session.outcome == finished.outcome
    assert session.deadline is None


def test_a_choice_can_lead_to_another_step() -> None:
    session = waiting_in("menu")
    assert session.digit(2.0, "2") == [speech("Type your order number then hash")]
    assert session.path == ("menu", "order")


def test_a_hangup_option_hangs_up_as_the_script_says() -> None:
    session = waiting_in("menu")
    assert session.digit(2.0, "0") == [Finished(HangUp({}, HangUpReason.SCRIPT))]


def test_a_digit_during_a_menu_prompt_stops_it_and_counts() -> None:
    session = session_at("menu")
    assert session.digit(0.5, "1") == [StopPrompt(), Finished(RouteToGroup(3, {}))]


def test_the_menu_timeout_starts_when_its_prompt_ends() -> None:
    session = session_at("menu")
    assert session.deadline == 300.0  # only the IVR's total cap while the prompt plays
    session.prompt_finished(4.0)
    assert session.deadline == 9.0


def test_a_menu_without_prompt_waits_from_the_start() -> None:
    session = session_at("menu", with_step("menu", prompt=None))
    assert session.deadline == 5.0


def test_an_invalid_choice_says_so_then_asks_again() -> None:
    session = waiting_in("menu")
    assert session.digit(2.0, "7") == [speech("Invalid choice")]
    assert session.deadline == 300.0
    assert session.prompt_finished(3.0) == [PlayPrompt(AudioPrompt("menu.wav"), True)]
    session.prompt_finished(4.0)
    assert session.deadline == 9.0
    assert session.path == ("menu",)


def test_silence_says_please_choose_then_asks_again() -> None:
    session = waiting_in("menu")
    assert session.timeout(6.0) == [speech("Please choose")]


def test_invalid_choices_and_silences_count_together_towards_failure() -> None:
    session = waiting_in("menu")
    session.digit(2.0, "7")  # first failure: "Invalid choice"
    session.prompt_finished(3.0)
    session.prompt_finished(4.0)
    session.timeout(9.0)  # second failure: "Please choose"
    session.digit(9.5, "2")  # barge-in on "Please choose" is still a valid choice
    assert session.path == ("menu", "order")


def test_the_last_failed_attempt_leads_to_on_failure() -> None:
    session = waiting_in("menu")
    for now in (2.0, 3.0):
        session.digit(now, "8")
    assert session.digit(4.0, "9") == [StopPrompt(), Finished(RouteToGroup(4, {}))]


def test_failure_hangs_up_by_default() -> None:
    session = waiting_in("menu", with_step("menu", on_failure=None, attempts=1))
    assert session.timeout(6.0) == [Finished(HangUp({}, HangUpReason.FAILURE))]


def test_a_choice_leading_back_to_the_menu_starts_its_attempts_afresh() -> None:
    config = with_step("menu", options={"9": {"step": "menu"}}, attempts=2, prompt=None)
    session = session_at("menu", config)
    session.digit(1.0, "5")  # one failure
    session.prompt_finished(2.0)
    session.digit(3.0, "9")  # back to the menu
    assert session.digit(4.0, "5") == [speech("Invalid choice")]
    assert session.path == ("menu", "menu")


# --- Collecting digits --------------------------------------------------------------------


def test_the_terminator_ends_input_and_is_not_stored() -> None:
    session = waiting_in("order")
    assert press(session, 2.0, "1234567#") == [
        Finished(RouteToGroup(3, {"order_number": "1234567"}))
    ]
    assert session.variables == {"order_number": "1234567"}


def test_reaching_max_length_ends_input_without_a_terminator() -> None:
    session = waiting_in("order")
    assert press(session, 2.0, "123456789") == []
    assert press(session, 2.0, "0") == [Finished(RouteToGroup(3, {"order_number": "1234567890"}))]


def test_a_digit_during_the_collect_prompt_is_the_first_digit() -> None:
    session = session_at("order")
    assert session.digit(0.5, "1") == [StopPrompt()]
    assert press(session, 1.0, "23456#") == [Finished(RouteToGroup(3, {"order_number": "123456"}))]


def test_the_first_digit_is_awaited_for_timeout_then_each_next_for_inter_digit_timeout() -> None:
    session = waiting_in("order")
    assert session.deadline == 9.0
    session.digit(5.0, "1")
    assert session.deadline == 8.0
    session.digit(7.0, "2")
    assert session.deadline == 10.0


def test_a_pause_after_enough_digits_ends_input() -> None:
    session = waiting_in("order")
    press(session, 2.0, "123456")
    assert session.timeout(5.0) == [Finished(RouteToGroup(3, {"order_number": "123456"}))]


def test_too_few_digits_are_retried_with_the_retry_prompt() -> None:
    session = waiting_in("order")
    assert press(session, 2.0, "123#") == [speech("That number is not valid")]
    assert session.prompt_finished(3.0) == [speech("Type your order number then hash")]
    session.prompt_finished(4.0)
    assert press(session, 5.0, "654321#") == [Finished(RouteToGroup(3, {"order_number": "654321"}))]


def test_digits_not_matching_the_pattern_are_retried() -> None:
    session = waiting_in("order")
    assert press(session, 2.0, "12*4567#") == [speech("That number is not valid")]
    assert session.variables == {}


def test_silence_in_collect_is_a_failed_try() -> None:
    session = waiting_in("order")
    assert session.timeout(9.0) == [speech("That number is not valid")]


def test_retries_exhausted_lead_to_on_failure_without_storing() -> None:
    session = waiting_in("order")
    assert press(session, 2.0, "1#") == [speech("That number is not valid")]
    assert press(session, 3.0, "2#") == [StopPrompt(), speech("That number is not valid")]
    assert press(session, 4.0, "3#") == [StopPrompt(), Finished(RouteToGroup(4, {}))]
    assert session.variables == {}


def test_collected_variables_travel_with_the_outcome() -> None:
    session = session_at("welcome")
    session.prompt_finished(1.0)
    session.digit(2.0, "2")
    assert press(session, 3.0, "99887766#") == [
        StopPrompt(),
        Finished(RouteToGroup(3, {"order_number": "99887766"})),
    ]
    assert session.path == ("welcome", "menu", "order")


# --- Time and ignored events --------------------------------------------------------------


def test_no_caller_stays_in_the_ivr_longer_than_max_duration() -> None:
    config = {**with_step("menu", options={"9": {"step": "welcome"}}), "max_duration": 20}
    session = session_at("welcome", config)
    session.prompt_finished(5.0)
    session.prompt_finished(8.0)
    session.digit(9.0, "9")  # back to the welcome message, which now plays forever
    assert session.deadline == 20.0
    assert session.timeout(20.0) == [StopPrompt(), Finished(HangUp({}, HangUpReason.TIMEOUT))]


def test_a_timeout_before_the_deadline_changes_nothing() -> None:
    session = waiting_in("menu")
    assert session.timeout(5.9) == []
    assert session.deadline == 6.0
    assert session.path == ("menu",)


def test_an_event_after_a_missed_deadline_first_applies_the_timeout() -> None:
    session = waiting_in("order")
    press(session, 2.0, "123456")  # the inter-digit timeout falls at 5.0
    assert session.digit(7.0, "7") == [Finished(RouteToGroup(3, {"order_number": "123456"}))]


def test_an_ignored_event_still_applies_a_timeout_that_fell_due() -> None:
    session = waiting_in("menu")
    assert session.digit(6.5, "A") == [speech("Please choose")]


@pytest.mark.parametrize("key", ["", "A", "12", "x", " "])
def test_keys_that_are_not_dtmf_digits_are_ignored(key: str) -> None:
    session = waiting_in("menu")
    assert session.digit(2.0, key) == []
    assert session.deadline == 6.0


def test_events_after_the_outcome_are_ignored() -> None:
    session = waiting_in("menu")
    session.digit(2.0, "1")
    outcome = session.outcome
    assert session.digit(3.0, "2") == []
    assert session.prompt_finished(3.0) == []
    assert session.timeout(1000.0) == []
    assert session.start(1000.0) == []
    assert session.outcome == outcome


def test_a_stray_prompt_finished_while_waiting_is_ignored() -> None:
    session = waiting_in("menu")
    assert session.prompt_finished(2.0) == []
    assert session.deadline == 6.0


# --- Properties ---------------------------------------------------------------------------

PROMPTS = st.one_of(st.none(), st.just(WELCOME), st.just(MENU))
TIMEOUTS = st.sampled_from([MIN_TIMEOUT, 1, 2.5, 5])


@st.composite
def scripts(draw: st.DrawFn) -> IvrScript:
    """Valid scripts; play steps only lead forward, so they never loop."""
    count = draw(st.integers(1, 6))
    ids = [f"s{i}" for i in range(count)]

    def target(later_only_from: int | None = None) -> dict[str, Any]:
        pool = ids if later_only_from is None else ids[later_only_from + 1 :]
        choices: list[dict[str, Any]] = [{"group": 1}, {"hangup": True}]
        choices += [{"step": step_id} for step_id in pool]
        return draw(st.sampled_from(choices))

    steps: dict[str, Any] = {}
    for i, step_id in enumerate(ids):
        kind = draw(st.sampled_from(["play", "menu", "collect"]))
        if kind == "play":
            steps[step_id] = {"type": kind, "prompt": WELCOME, "next": target(i)}
            continue
        step: dict[str, Any] = {"type": kind, "timeout": draw(TIMEOUTS), "on_failure": target()}
        for name in ("prompt", "invalid_prompt", "timeout_prompt", "retry_prompt"):
            step[name] = draw(PROMPTS)
        if kind == "menu":
            keys = draw(st.sets(st.sampled_from(sorted("0123456789*#")), min_size=1, max_size=4))
            step["options"] = {key: target() for key in sorted(keys)}
            step["attempts"] = draw(st.integers(1, 3))
            del step["retry_prompt"]
        else:
            high = draw(st.integers(1, 6))
            del step["invalid_prompt"], step["timeout_prompt"]
            step |= {
                "variable": f"v{i}",
                "min_length": draw(st.integers(0, high)),
                "max_length": high,
                "terminator": draw(st.sampled_from(["#", "*", None])),
                "inter_digit_timeout": draw(TIMEOUTS),
                "retries": draw(st.integers(0, 2)),
                "pattern": draw(st.sampled_from([None, "[0-9]+", "1.*", "[^*]*"])),
                "next": target(),
            }
        steps[step_id] = {k: v for k, v in step.items() if v is not None}
    return parse_ivr(
        {"start": "s0", "max_duration": draw(st.sampled_from([10, 60])), "steps": steps}
    )


EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["digit", "finished", "timeout", "early"]),
        st.sampled_from([0.0, 0.1, 1.0, 3.0]),
        st.sampled_from([*sorted("0123456789*#"), "A"]),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(scripts(), EVENTS)
def test_any_caller_behaviour_ends_in_bounded_time_and_respects_the_rules(
    script: IvrScript, events: list[tuple[str, float, str]]
) -> None:
    session = IvrSession(script, "call-1")
    now = 0.0
    actions = session.start(now)
    finished_seen = 0

    def check(new: list[IvrAction], ended_before: bool) -> None:
        nonlocal finished_seen
        if ended_before:
            assert new == []
        finishes = [a for a in new if isinstance(a, Finished)]
        finished_seen += len(finishes)
        assert finishes in ([], new[-1:])  # Finished is always the last action
        if session.outcome is None:
            deadline = session.deadline
            assert deadline is not None
            assert deadline >= now
        else:
            assert session.deadline is None
            assert finishes in ([], [Finished(session.outcome)])

    check(actions, ended_before=False)
    for kind, dt, key in events:
        ended = session.outcome is not None
        deadline = session.deadline
        if kind == "timeout" and deadline is not None:
            now = max(now, deadline)
            check(session.timeout(now), ended)
        elif kind == "early" and deadline is not None and deadline > now:
            before = (session.path, session.deadline, dict(session.variables))
            assert session.timeout(now) == []
            assert (session.path, session.deadline, dict(session.variables)) == before
        elif kind == "digit":
            now += dt
            check(session.digit(now, key), ended)
        else:
            now += dt
            check(session.prompt_finished(now), ended)

    bound = math.ceil(script.max_duration / MIN_TIMEOUT) + 1
    for _ in range(bound):
        deadline = session.deadline
        if deadline is None:
            break
        now = max(now, deadline)
        check(session.timeout(now), ended_before=False)
    assert session.outcome is not None
    assert finished_seen == 1
    assert session.path[0] == "s0"
    for name, value in session.variables.items():
        step = script.steps[f"s{name[1:]}"]
        assert isinstance(step, CollectStep)
        assert step.accepts(value)
    assert session.outcome.variables == session.variables
