"""Scripted conversations: rules that say what the model does when the user says something.

A scenario makes a test or a demo deterministic beyond the offline brain: "when the user mentions
the weather, call get_weather for Paris, then drop the socket". The file format is documented in
`emulator/README.md`; JSON and YAML are both read.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from emulator.actions import KINDS, Action, ActionError, parse_action


class ScenarioError(ValueError):
    """A scenario file that cannot be used, with where and why."""


@dataclass(frozen=True)
class Rule:
    """When the user's words match `when`, the model does `steps` in order.

    Attributes:
        index: The rule's place in the file, from 0; uses are counted by it.
        when: The pattern searched in the user's words; None matches every turn.
        actions: The actions as written in the file (one-key mappings).
        times: How many times the rule may fire per conversation; None for no limit.
        steps: The same actions, read.
    """

    index: int
    when: re.Pattern[str] | None
    actions: list[dict[str, Any]]
    times: int | None = None
    steps: tuple[Action, ...] = ()


@dataclass
class Scenario:
    """A list of rules tried in order before the offline brain, plus actions on connect."""

    rules: list[Rule] = field(default_factory=list)
    on_connect: tuple[Action, ...] = ()

    def first_rule(self, user_text: str, uses: dict[int, int]) -> Rule | None:
        """The first rule that matches and has uses left, counting the use."""
        for rule in self.rules:
            if rule.times is not None and uses.get(rule.index, 0) >= rule.times:
                continue
            if rule.when is None or rule.when.search(user_text):
                uses[rule.index] = uses.get(rule.index, 0) + 1
                return rule
        return None

    def match(self, user_text: str, uses: dict[int, int]) -> list[dict[str, Any]] | None:
        """The actions, as written, of the rule that `first_rule` picks."""
        rule = self.first_rule(user_text, uses)
        return None if rule is None else rule.actions


# The argument key a mapping action is shown with in errors, and whether it may be written bare
# (`goaway: null`, `close: true`).
_MAPPINGS: dict[str, tuple[str, bool]] = {
    "goaway": ("time_left_s", True),
    "latency": ("first_audio_ms", False),
    "close": ("code", True),
    "cancel_tool_calls": ("ids", True),
}
# Actions written as their one value: `say: "Hello"`, `wait_ms: 200`.
_VALUES: dict[str, str] = {"say": "text", "wait_ms": "ms"}


def _fields(kind: str, arg: Any) -> dict[str, Any]:
    """An action's arguments by name, from how the file writes them."""
    if kind in _VALUES:
        return {_VALUES[kind]: arg}
    if kind == "tool_call":
        if not isinstance(arg, dict):
            raise ActionError("tool_call needs a name (and args).")
        return arg
    if kind == "drop":
        if arg is None or arg is True or isinstance(arg, dict):
            return {}
        raise ActionError("drop takes no value: write drop: true.")
    key, bare_ok = _MAPPINGS[kind]
    if arg is None or arg is True:
        if bare_ok:
            return {}
        raise ActionError(f"{kind} needs {{{key}: ...}}.")
    if not isinstance(arg, dict):
        raise ActionError(f"{kind} takes a mapping, e.g. {{{key}: ...}}.")
    return arg


def _check_actions(actions: Any, where: str) -> tuple[list[dict[str, Any]], tuple[Action, ...]]:
    """The actions as written and as read; refused at load time, not in the middle of a session."""
    if not isinstance(actions, list) or not actions:
        raise ScenarioError(f"{where}: 'do' must be a non-empty list of actions.")
    written: list[dict[str, Any]] = []
    steps: list[Action] = []
    for i, action in enumerate(actions):
        if not isinstance(action, dict) or len(action) != 1:
            raise ScenarioError(
                f"{where}, action {i + 1}: write each action as one key, e.g. say: ..."
            )
        ((kind, arg),) = action.items()
        try:
            steps.append(parse_action(kind, _fields(kind, arg) if kind in KINDS else {}))
        except ActionError as exc:
            raise ScenarioError(f"{where}, action {i + 1}: {exc}") from None
        written.append({kind: arg})
    return written, tuple(steps)


def parse_scenario(data: Any) -> Scenario:
    """Build a scenario from parsed JSON/YAML, with errors that name the rule at fault."""
    if not isinstance(data, dict):
        raise ScenarioError("A scenario is a mapping with 'rules' and optionally 'on_connect'.")
    unknown = set(data) - {"rules", "on_connect"}
    if unknown:
        raise ScenarioError(f"Unknown scenario keys: {', '.join(sorted(unknown))}.")
    rules: list[Rule] = []
    for i, raw in enumerate(data.get("rules") or []):
        where = f"rule {i + 1}"
        if not isinstance(raw, dict):
            raise ScenarioError(f"{where}: expected a mapping with 'when' and 'do'.")
        when = raw.get("when")
        try:
            pattern = re.compile(when, re.IGNORECASE) if when else None
        except re.error as exc:
            raise ScenarioError(
                f"{where}: 'when' is not a valid regular expression: {exc}."
            ) from exc
        times = raw.get("times")
        if times is not None and (not isinstance(times, int) or times < 1):
            raise ScenarioError(f"{where}: 'times' must be a positive integer.")
        written, steps = _check_actions(raw.get("do"), where)
        rules.append(Rule(i, pattern, written, times, steps))
    on_connect = data.get("on_connect")
    return Scenario(
        rules=rules, on_connect=_check_actions(on_connect, "on_connect")[1] if on_connect else ()
    )


def load_scenario(path: Path) -> Scenario:
    """Read a scenario file (`.json`, `.yaml` or `.yml`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"Cannot read scenario {path}: {exc.strerror}.") from exc
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ScenarioError(
            f"Scenario {path} is not valid {path.suffix[1:] or 'YAML'}: {exc}"
        ) from exc
    return parse_scenario(data)
