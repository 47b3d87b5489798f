"""The kit's expectations on their own: what matches, what is passed over, what a failure says."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bottest import Conversation, Expect, ExpectationFailed

pytestmark = pytest.mark.unit

scalars = st.one_of(st.integers(-1000, 1000), st.text(max_size=12), st.booleans(), st.none())
arguments = st.dictionaries(st.text(min_size=1, max_size=8), scalars, max_size=5)


def conversation(*events: tuple[str, dict[str, Any]]) -> Conversation:
    talk = Conversation()
    for kind, fields in events:
        talk.add(kind, **fields)  # type: ignore[arg-type]
    return talk


def a_call(
    name: str = "calculate", args: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    return ("tool_call", {"name": name, "arguments": args or {}, "call_id": f"c-{name}"})


def a_reply(text: str, *, interrupted: bool = False) -> tuple[str, dict[str, Any]]:
    return ("reply", {"text": text, "interrupted": interrupted})


@given(arguments)
def test_a_call_matches_its_exact_arguments(args: dict[str, Any]) -> None:
    expect = Expect(conversation(("typed", {"text": "hi"}), a_call(args=args)))
    assert expect.tool_call("calculate", args).arguments == args


@given(arguments, st.text(min_size=1, max_size=8), scalars)
def test_a_call_with_one_value_changed_fails_showing_both_values(
    args: dict[str, Any], key: str, value: Any
) -> None:
    expected = {**args, key: value}
    got = {**args, key: ["something", "else"]}
    expect = Expect(conversation(a_call(args=got)))
    with pytest.raises(ExpectationFailed) as failed:
        expect.tool_call("calculate", expected)
    message = str(failed.value)
    assert "arguments (- expected, + got):" in message
    assert any(line.lstrip().startswith("- ") for line in message.splitlines())
    assert any(line.lstrip().startswith("+ ") for line in message.splitlines())


@given(arguments, arguments)
def test_partial_arguments_match_any_call_that_has_them(given_args: Any, extra: Any) -> None:
    got = {**extra, **given_args}
    assert Expect(conversation(a_call(args=got))).tool_call(arguments=given_args, partial=True)


def test_an_exact_expectation_refuses_extra_arguments_that_a_partial_one_allows() -> None:
    talk = conversation(a_call(args={"expression": "6 * 7", "precision": 2}))
    with pytest.raises(ExpectationFailed):
        Expect(talk).tool_call("calculate", {"expression": "6 * 7"})
    Expect(talk).tool_call("calculate", {"expression": "6 * 7"}, partial=True)


def test_values_may_be_patterns_or_predicates() -> None:
    talk = conversation(a_call(args={"expression": "12 * 7", "precision": 3}))
    Expect(talk).tool_call(
        "calculate", {"expression": re.compile(r"12\s*\*\s*7"), "precision": lambda n: n > 2}
    )


def test_other_kinds_are_passed_over_but_the_same_kind_is_not() -> None:
    talk = conversation(
        ("heard", {"text": "what time"}),
        a_call("get_time"),
        a_reply("It is noon."),
        a_call("calculate"),
    )
    expect = Expect(talk)
    expect.reply(contains="noon")  # the call before it is passed over
    expect.tool_call("calculate")
    with pytest.raises(ExpectationFailed, match="got 'get_time'"):
        Expect(talk).tool_call("calculate")  # the first call is get_time: not skipped


def test_expectations_walk_forward_in_order() -> None:
    talk = conversation(a_reply("first"), a_reply("second"))
    expect = Expect(talk)
    expect.reply(contains="first")
    expect.reply(contains="second")
    with pytest.raises(ExpectationFailed, match="there is no bot said after event 2"):
        expect.reply()


def test_no_more_events_counts_the_bot_not_the_user_or_the_connection() -> None:
    talk = conversation(
        a_reply("done"), ("typed", {"text": "and?"}), ("session", {"name": "reconnected"})
    )
    expect = Expect(talk)
    expect.reply()
    expect.no_more_events()
    left = Expect(conversation(a_reply("a"), a_reply("b")))
    left.reply()
    with pytest.raises(ExpectationFailed, match="1 more happened, from event 2"):
        left.no_more_events()


def test_a_reply_contains_ignores_case_and_an_interrupted_one_must_be_asked_for() -> None:
    talk = conversation(a_reply("Once upon a time", interrupted=True))
    Expect(talk).reply(contains="ONCE UPON", interrupted=None)
    Expect(talk).interrupted(contains="once")
    with pytest.raises(ExpectationFailed, match="was cut short"):
        Expect(talk).reply(contains="once")


def test_a_turn_s_cursor_sees_only_its_own_events() -> None:
    talk = conversation(a_reply("earlier"), ("typed", {"text": "now"}), a_reply("later"))
    turn = Expect(talk, start=1)
    with pytest.raises(ExpectationFailed) as failed:
        turn.reply(contains="earlier")
    message = str(failed.value)
    assert re.search(r"·\s+1\s+bot said\s+'earlier'", message), message
    assert re.search(r">\s+3\s+bot said\s+'later'", message), message


def test_said_joins_every_reply_from_the_cursor_on() -> None:
    talk = conversation(a_reply("Let me check that."), a_call(), a_reply("It is 42."))
    expect = Expect(talk)
    expect.said(contains="check that. it is 42")
    with pytest.raises(ExpectationFailed, match="no bot said after event 3"):
        expect.reply()
    with pytest.raises(ExpectationFailed, match="which does not contain '43'"):
        Expect(talk).said(contains="43")
