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

ACTIONS = ("say", "tool_call", "goaway", "drop", "latency", "close", "wait_ms")


class ScenarioError(ValueError):
    """A scenario file that cannot be used, with where and why."""


@dataclass(frozen=True)
class Rule:
    """When the user's words match `when`, the model does `actions` in order."""

    index: int
    when: re.Pattern[str] | None
    actions: list[dict[str, Any]]
    times: int | None = None


@dataclass
class Scenario:
    """A list of rules tried in order before the offline brain, plus actions on connect."""

    rules: list[Rule] = field(default_factory=list)
    on_connect: list[dict[str, Any]] = field(default_factory=list)

    def match(self, user_text: str, uses: dict[int, int]) -> list[dict[str, Any]] | None:
        """Return the actions of the first rule that matches and has uses left, counting the use."""
        for rule in self.rules:
            if rule.times is not None and uses.get(rule.index, 0) >= rule.times:
                continue
            if rule.when is None or rule.when.search(user_text):
                uses[rule.index] = uses.get(rule.index, 0) + 1
                return rule.actions
        return None


# The numeric field each action reads, and whether the action may be written bare (`drop:`).
_NUMBERS: dict[str, tuple[str | None, bool]] = {
    "goaway": ("time_left_s", True),
    "latency": ("first_audio_ms", False),
    "close": ("code", True),
    "drop": (None, True),
}


def _check_numbers(kind: str, arg: Any, where: str) -> None:
    """Refuse at load time what would otherwise fail in the middle of a session."""
    if kind == "wait_ms":
        if isinstance(arg, bool) or not isinstance(arg, int | float) or arg < 0:
            raise ScenarioError(f"{where}: wait_ms takes a number of milliseconds.")
        return
    if kind not in _NUMBERS:
        return
    key, bare_ok = _NUMBERS[kind]
    if arg is None or arg is True:
        if bare_ok:
            return
        raise ScenarioError(f"{where}: {kind} needs {{{key}: ...}}.")
    if not isinstance(arg, dict):
        raise ScenarioError(f"{where}: {kind} takes a mapping, e.g. {{{key}: ...}}.")
    if key is not None and key in arg:
        value = arg[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ScenarioError(f"{where}: {kind}.{key} must be a non-negative number.")


def _check_actions(actions: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(actions, list) or not actions:
        raise ScenarioError(f"{where}: 'do' must be a non-empty list of actions.")
    out: list[dict[str, Any]] = []
    for i, action in enumerate(actions):
        if not isinstance(action, dict) or len(action) != 1:
            raise ScenarioError(
                f"{where}, action {i + 1}: write each action as one key, e.g. say: ..."
            )
        ((kind, arg),) = action.items()
        if kind not in ACTIONS:
            raise ScenarioError(
                f"{where}, action {i + 1}: unknown action {kind!r}; known: {', '.join(ACTIONS)}."
            )
        if kind == "say" and not isinstance(arg, str):
            raise ScenarioError(f"{where}, action {i + 1}: say takes the text to speak.")
        if kind == "tool_call" and not (isinstance(arg, dict) and isinstance(arg.get("name"), str)):
            raise ScenarioError(f"{where}, action {i + 1}: tool_call needs a name (and args).")
        _check_numbers(kind, arg, f"{where}, action {i + 1}")
        out.append({kind: arg})
    return out


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
        rules.append(Rule(i, pattern, _check_actions(raw.get("do"), where), times))
    on_connect = data.get("on_connect")
    return Scenario(
        rules=rules,
        on_connect=_check_actions(on_connect, "on_connect") if on_connect else [],
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
