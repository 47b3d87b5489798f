"""The Pipecat contract holds: every private name the project relies on is listed and still fits.

`bots.gemini_live.pipecat_contract` lists each private Pipecat name with what the project
expects of it. These tests check the list against the installed Pipecat (naming the symbol
that no longer matches), prove the check can fail, and scan the project, its tests included, for
a private Pipecat name that is used but not listed, or listed but no longer used.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import textwrap
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from conftest import REPO

from bots.gemini_live.pipecat_contract import CONTRACT, Attribute, Entry, Method, check, names

pytestmark = pytest.mark.unit

PROJECT_PACKAGES = (
    "bots",
    "processors",
    "toolcalls",
    "observers",
    "testkit",
    "bench",
    "emulator",
    "tests",
)
SCANNER = Path(__file__).resolve()
"""This module: its examples of private names are the scan's own, not uses."""


# --------------------------------------------------------------------------------------------
# The contract against the installed Pipecat


@pytest.mark.parametrize("entry", CONTRACT, ids=lambda e: e.symbol)
def test_each_private_name_on_the_contract_matches_the_installed_pipecat(entry: Entry) -> None:
    assert check((entry,)) == []


def test_the_whole_contract_matches_the_installed_pipecat() -> None:
    assert check() == []


# --------------------------------------------------------------------------------------------
# The check can fail, and says which symbol


class Renamed:
    """A Pipecat class after a release that renamed `_tool_result` and reshaped `_connect`."""

    async def _send_tool_result(self, tool_call_id: str) -> None:
        pass

    async def _connect(self, handle: str | None = None, *, fresh: bool = False) -> None:
        pass

    def _handle_interruption(self) -> None:  # no longer a coroutine
        pass


def method_like(name: str) -> Method:
    (entry,) = [e for e in CONTRACT if isinstance(e, Method) and e.name == name]
    return Method(
        Renamed,
        entry.name,
        entry.parameters,
        coroutine=entry.coroutine,
        use=entry.use,
        reason=entry.reason,
        where=entry.where,
    )


def test_the_check_names_a_method_that_is_gone() -> None:
    assert check((method_like("_tool_result"),)) == ["Renamed._tool_result: missing"]


def test_the_check_names_a_method_whose_parameters_changed() -> None:
    assert check((method_like("_connect"),)) == [
        "Renamed._connect: expected (self, session_resumption_handle=None), "
        "found (self, handle=None, *, fresh=False)"
    ]


def test_the_check_names_a_method_that_is_no_longer_a_coroutine() -> None:
    assert check((method_like("_handle_interruption"),)) == [
        "Renamed._handle_interruption: expected a coroutine function"
    ]


class Reshaped:
    def __init__(self) -> None:
        self._ready_for_realtime_input = "yes"


def test_the_check_names_an_attribute_that_is_gone_or_of_another_type() -> None:
    why = {"use": "writes", "reason": "r", "where": ()}
    gone = Attribute(Reshaped, "Reshaped()", "_session", type(None), **why)  # type: ignore[arg-type]
    other = Attribute(Reshaped, "Reshaped()", "_ready_for_realtime_input", bool, **why)  # type: ignore[arg-type]
    assert check((gone, other)) == [
        "Reshaped()._session: missing",
        "Reshaped()._ready_for_realtime_input: expected <class 'bool'>, found str",
    ]


def test_every_entry_gives_its_reason_and_where_it_is_used() -> None:
    for entry in CONTRACT:
        assert entry.reason and entry.where, entry.symbol
        for module in entry.where:
            assert (REPO / (module.replace(".", "/") + ".py")).is_file(), (entry.symbol, module)


# --------------------------------------------------------------------------------------------
# The contract lists exactly what the project uses


def project_files() -> Iterator[Path]:
    for package in PROJECT_PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if "node_modules" not in path.parts and path != SCANNER:
                yield path


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts)


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


@cache
def pipecat_names(cls: type) -> frozenset[str]:
    """The private names a Pipecat class and its Pipecat bases define: methods and class
    attributes, and the instance attributes their methods assign."""
    found: set[str] = set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith("pipecat"):
            continue
        found |= {n for n in vars(klass) if is_private(n)}
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        found |= {
            node.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name)
            and node.value.id == "self"
            and is_private(node.attr)
        }
    return frozenset(found)


def pipecat_bases(cls: type) -> frozenset[str]:
    """The private names of the Pipecat classes ``cls`` derives from (empty if none)."""
    bases = [k for k in cls.__mro__ if k.__module__.startswith("pipecat")]
    return frozenset().union(*(pipecat_names(k) for k in bases)) if bases else frozenset()


class Uses(ast.NodeVisitor):
    """The private Pipecat names one project module defines, assigns, reads or calls."""

    def __init__(self, module: object, everywhere: frozenset[str]) -> None:
        self.module = module
        self.everywhere = everywhere
        self.scope: list[frozenset[str]] = [frozenset()]
        self.found: set[str] = set()

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        cls = getattr(self.module, node.name, None)
        inherited = pipecat_bases(cls) if isinstance(cls, type) else frozenset()
        self.scope.append(inherited)
        for item in node.body:
            if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name in inherited:
                self.found.add(item.name)  # an override
        self.generic_visit(node)
        self.scope.pop()

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if is_private(node.attr):
            on_self = isinstance(node.value, ast.Name) and node.value.id == "self"
            if node.attr in (self.scope[-1] if on_self else self.everywhere):
                self.found.add(node.attr)
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        # `getattr(tool, "_pipecat_timeout_secs", None)`: Pipecat's function attributes.
        if isinstance(node.value, str) and node.value.startswith("_pipecat_"):
            self.found.add(node.value)


def own_names(cls: type) -> set[str]:
    """The private names a project class defines for itself (not inherited from Pipecat)."""
    defined = {n for n in vars(cls) if is_private(n)}
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        tree = ast.Module(body=[], type_ignores=[])
    defined |= {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
    }
    return {n for n in defined if is_private(n)} - pipecat_bases(cls)


def private_pipecat_names_used() -> dict[str, set[str]]:
    """Each private Pipecat name the project uses, with the modules that use it.

    Accesses on ``self`` count in classes that derive from Pipecat; accesses on other objects
    (``self._service._x``, ``llm._x``) count unless a project class has a name of its own.
    """
    modules = {path: importlib.import_module(module_name(path)) for path in project_files()}
    classes = [
        v
        for m in modules.values()
        for v in vars(m).values()
        if isinstance(v, type) and v.__module__ == m.__name__
    ]
    everywhere = frozenset().union(*(pipecat_bases(c) for c in classes))
    everywhere -= set().union(*(own_names(c) for c in classes))
    used: dict[str, set[str]] = {}
    for path, module in modules.items():
        visitor = Uses(module, everywhere)
        visitor.visit(ast.parse(path.read_text(encoding="utf-8")))
        for name in visitor.found:
            used.setdefault(name, set()).add(module_name(path))
    return used


@pytest.fixture(scope="module")
def used() -> dict[str, set[str]]:
    return private_pipecat_names_used()


def test_every_private_pipecat_name_the_project_uses_is_on_the_contract(
    used: dict[str, set[str]],
) -> None:
    missing = {name: sorted(where) for name, where in used.items() if name not in names()}
    assert not missing, f"add these to bots/gemini_live/pipecat_contract.py: {missing}"


def test_every_name_on_the_contract_is_still_used_where_it_says(
    used: dict[str, set[str]],
) -> None:
    for entry in CONTRACT:
        assert entry.name in used, f"{entry.symbol} is no longer used: remove it"
        assert set(entry.where) <= used[entry.name], (entry.symbol, sorted(used[entry.name]))


def test_the_scan_finds_a_private_name_of_a_pipecat_base_class(tmp_path: Path) -> None:
    from pipecat.processors.frame_processor import FrameProcessor

    source = textwrap.dedent(
        """
        class Sneaky(FrameProcessor):
            async def _start_interruption(self):
                self._is_usable = False
        """
    )

    class Module:
        Sneaky = type("Sneaky", (FrameProcessor,), {})

    visitor = Uses(Module, frozenset())
    visitor.visit(ast.parse(source))
    assert visitor.found == {"_start_interruption", "_is_usable"}
