"""The README's "Testing your bot" is true: its code is the examples' own, its API is the kit's."""

from __future__ import annotations

import re
import textwrap

import pytest
from conftest import REPO

from bottest import Expect, LiveBot, Model

pytestmark = pytest.mark.unit

README = (REPO / "README.md").read_text(encoding="utf-8")
SECTION = README[README.index("## Testing your bot") : README.index("## Transcripts")]
EXAMPLES = "\n".join(
    path.read_text(encoding="utf-8") for path in sorted((REPO / "examples").rglob("*.py"))
)


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", SECTION, re.S)


def table_names(heading: str) -> list[str]:
    """The names in the first column of the table after `heading`."""
    table = SECTION[SECTION.index(heading) :].split("\n\n", 2)[1]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    return [re.match(r"\| `(?:await )?(?:bot\.)?(\w+)", row).group(1) for row in rows]  # type: ignore[union-attr]


@pytest.mark.parametrize("block", blocks("python"), ids=lambda b: b.splitlines()[0][:60])
def test_every_python_block_is_code_the_examples_run(block: str) -> None:
    assert textwrap.dedent(block).strip() in EXAMPLES, block


def test_the_failure_shown_is_the_form_the_kit_prints() -> None:
    (shown,) = blocks("text")
    assert "ExpectationFailed: expected a tool call calculate" in shown
    assert "the conversation so far (> where it looked):" in shown
    assert "arguments (- expected, + got):" in shown


def test_every_step_in_the_table_is_a_method_of_the_bot() -> None:
    steps = table_names("**Steps**")
    assert steps and all(callable(getattr(LiveBot, step, None)) for step in steps), steps


def test_every_expectation_in_the_table_is_a_method_and_every_method_is_in_the_table() -> None:
    listed = set(table_names("**Expectations**"))
    public = {n for n in vars(Expect) if not n.startswith("_") and callable(getattr(Expect, n))}
    assert listed == public - {"fail"}


def test_every_model_action_named_is_one_the_bot_has_and_none_is_left_out() -> None:
    paragraph = SECTION[SECTION.index("**The model, on demand**") :].split("\n\n", 1)[0]
    named = set(re.findall(r"`(\w+)\(", paragraph))
    public = {n for n in vars(Model) if not n.startswith("_")}
    assert named == public


def test_every_fixture_in_the_table_is_one_the_plugin_defines() -> None:
    from bottest import plugin

    for name in table_names("**Fixtures**"):
        assert hasattr(plugin, name), name
