"""The processes a test starts, found and ended by PID: never by name.

Everything a harness starts is recorded (`started()`), stopped by process group or PID, and
`leftovers()` lists any of them still alive, read from /proc (a PID reused by another process
does not count, thanks to its start time).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from testkit.waiting import wait_for

REPO = Path(__file__).resolve().parents[1]


class HarnessError(RuntimeError):
    """A step of a test harness did not happen in time, or a process misbehaved."""


@dataclass(frozen=True)
class Proc:
    """A process seen in /proc: its PID, the start time that tells it from a reused PID, argv."""

    pid: int
    start: int
    argv: tuple[str, ...]

    def alive(self) -> bool:
        """Still running (a zombie or a new process with the same PID does not count)."""
        stat = _stat(self.pid)
        return stat is not None and stat[2] == self.start and stat[1] != "Z"

    def __str__(self) -> str:
        return f"{self.pid} {' '.join(self.argv)[:120]}"


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(parent PID, state, start time) of a process, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0], int(fields[19])


def proc_of(pid: int) -> Proc | None:
    stat = _stat(pid)
    if stat is None or stat[1] == "Z":
        return None
    try:
        argv = tuple(Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1])
    except OSError:
        return None
    return Proc(pid, stat[2], argv)


def descendants(root: int) -> list[Proc]:
    """Every live process below `root`, found through the parent PIDs in /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents.setdefault(stat[0], []).append(int(entry.name))
    found: list[Proc] = []
    todo = list(parents.get(root, []))
    while todo:
        pid = todo.pop()
        proc = proc_of(pid)
        if proc is not None:
            found.append(proc)
            todo.extend(parents.get(pid, []))
    return found


_STARTED: dict[tuple[int, int], Proc] = {}


def record(procs: Sequence[Proc]) -> None:
    """Remember processes a harness started, for `leftovers()`."""
    for proc in procs:
        _STARTED[(proc.pid, proc.start)] = proc


def started() -> list[Proc]:
    """Every process recorded so far (bots, emulators, Playwright drivers, Chromium)."""
    return list(_STARTED.values())


def leftovers() -> list[Proc]:
    """The recorded processes that are still alive."""
    return [p for p in _STARTED.values() if p.alive()]


def kill_leftovers(procs: Sequence[Proc], wait: float = 5.0) -> list[Proc]:
    """Give processes `wait` seconds to exit on their own, then SIGKILL them by PID.

    Returns the ones that were still alive when the wait ran out.
    """
    with contextlib.suppress(AssertionError):
        wait_for(lambda: not any(p.alive() for p in procs), "processes to exit", wait)
    alive = [p for p in procs if p.alive()]
    for proc in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
    return alive


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_group(process: subprocess.Popen[bytes], timeout: float = 20.0) -> int:
    """SIGTERM to the process group a harness started (`start_new_session=True`), SIGKILL if it
    has not exited after `timeout` seconds; the exit code."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
    return process.wait(10)


async def stop_group_async(process: asyncio.subprocess.Process, timeout: float = 10.0) -> int:
    """`stop_group` for a process started by `asyncio.create_subprocess_exec(...,
    start_new_session=True)`: SIGTERM to its group, SIGKILL if it has not exited after `timeout`
    seconds; the exit code (`-SIGKILL` when it had to be killed)."""
    for sig, within in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), within)
    if process.returncode is None:
        raise HarnessError(f"pid {process.pid} is still running after SIGKILL")
    return process.returncode
