"""The file rules every transcript writer shares: names, private modes, whole-line appends.

A session file is read while it is being written and may be cut off by a crash at any byte, so
each event goes out as one `os.write` of one whole line on an `O_APPEND` descriptor, and a line
left torn by a crash is ended before the next one is appended.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

INDEX_NAME = "index.jsonl"
SUFFIX = ".jsonl"
FOLDER_MODE = 0o700
FILE_MODE = 0o600
SECONDS_PER_DAY = 86400.0

SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)


def new_session_id(now: float | None = None) -> str:
    """A session id that sorts by start time and cannot collide: `20250101-120000-3f9a1c`."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
    return f"{stamp}-{secrets.token_hex(3)}"


def check_session_id(session_id: str) -> str:
    """Refuse ids that could escape the folder or clash with the index (they name files)."""
    if not SESSION_ID.fullmatch(session_id) or session_id + SUFFIX == INDEX_NAME:
        raise ValueError(
            f"invalid session id {session_id!r}: use letters, digits, '.', '_' and '-' "
            "(at most 128, not starting with a dot or dash)"
        )
    return session_id


def encode_event(event: Mapping[str, Any]) -> bytes:
    """One event as one line; anything not JSON-native (a path, an enum) is written as a string."""
    return (
        json.dumps(event, ensure_ascii=False, separators=(",", ":"), default=str) + "\n"
    ).encode("utf-8")


def append_line(fd: int, data: bytes, size: int | None = None) -> None:
    """Append one whole line with a single write (atomic for O_APPEND on a local disk).

    Args:
        fd: An `O_APPEND` descriptor.
        data: The line, newline included.
        size: The file's size before the write when this process is its only writer: a failed
            or short write is then cut back to it, so no torn line is left in the middle of the
            file. None for the shared index, where cutting could remove another process's line.
    """
    try:
        written = os.write(fd, data)
    except OSError:
        if size is not None:
            _truncate_quietly(fd, size)
        raise
    if written != len(data):
        if size is not None:
            _truncate_quietly(fd, size)
        raise OSError(errno.ENOSPC, f"short write ({written} of {len(data)} bytes)")


def _truncate_quietly(fd: int, size: int) -> None:
    try:
        os.ftruncate(fd, size)
    except OSError:
        pass  # the reader skips a torn line anyway


def open_private(path: Path) -> int:
    """Open (or create) a file 0600 for appending, ending a torn last line left by a crash."""
    fd = os.open(path, _OPEN_FLAGS, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # a file that already existed keeps no wider mode
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            os.write(fd, b"\n")  # end a torn line left by a crash, so the next line stands alone
    except OSError:
        os.close(fd)
        raise
    return fd


def fsync_dir(folder: Path) -> None:
    """Make a new file's directory entry durable (only asked for in `fsync` mode)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
