"""A real PostgreSQL server for tests: Debian's binaries, a temporary cluster, a free port.

`initdb` and `postgres` refuse to run as root, so as root the cluster belongs to the `postgres`
user that Debian's package creates, and the server runs as that user; as anyone else it runs as
the caller. The cluster lives in a temporary folder, listens on 127.0.0.1 only (its Unix socket
in the same folder), trusts local connections (nothing else can reach it) and is stopped by its
PID, fast, then removed. Under `CI=true` a missing PostgreSQL is installed with apt
(`ensure_postgres`); elsewhere the tests that need it skip, saying why.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from testkit.waiting import wait_for

APT_PACKAGE = "postgresql"
SEARCH_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def binaries() -> Path | None:
    """The folder holding `initdb` and `postgres`, or None when PostgreSQL is not installed."""
    for folder in [*sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)]:
        if (folder / "initdb").exists() and (folder / "postgres").exists():
            return folder
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    """A running cluster; `url(db)` for a client."""

    root: Path
    port: int
    process: subprocess.Popen[bytes]
    user: str

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new, empty database; its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def log(self) -> str:
        return (self.root / "server.log").read_text(errors="replace")[-4000:]


def _ids(user: str | None) -> tuple[int | None, int | None]:
    """The uid and gid a child runs as: `user`'s (as root), or the caller's (None)."""
    if user is None:
        return None, None
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


@contextlib.contextmanager
def running_postgres(timeout: float = 60.0) -> Iterator[PostgresServer]:
    """A fresh cluster on a free port for as long as the block runs."""
    folder = binaries()
    if folder is None:
        raise FileNotFoundError(f"PostgreSQL is not installed (apt-get install {APT_PACKAGE})")
    as_root = os.geteuid() == 0
    run_as = "postgres" if as_root else None
    db_user = run_as or pwd.getpwuid(os.geteuid()).pw_name
    root = Path(tempfile.mkdtemp(prefix="gla-pg-"))
    data = root / "data"
    if run_as is not None:
        entry = pwd.getpwnam(run_as)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    os.chmod(root, 0o700)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "TZ": "UTC"}
    process: subprocess.Popen[bytes] | None = None
    uid, gid = _ids(run_as)
    groups: list[int] | None = [] if run_as is not None else None
    try:
        subprocess.run(
            [str(folder / "initdb"), "-D", str(data), "-U", db_user, "-A", "trust", "-E", "UTF8"],
            check=True,
            capture_output=True,
            env=env,
            timeout=timeout,
            user=uid,
            group=gid,
            extra_groups=groups,
        )
        port = _free_port()
        log = open(root / "server.log", "wb")
        if run_as is not None:
            os.chown(root / "server.log", pwd.getpwnam(run_as).pw_uid, -1)
        process = subprocess.Popen(
            [
                str(folder / "postgres"),
                "-D",
                str(data),
                "-p",
                str(port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={root}",
                "-c",
                "fsync=on",
                "-c",
                "max_connections=200",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            user=uid,
            group=gid,
            extra_groups=groups,
        )
        log.close()
        server = PostgresServer(root, port, process, db_user)

        def accepts() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"postgres exited with {process.returncode}: {server.log()}")
            import psycopg

            try:
                psycopg.connect(server.url(), connect_timeout=2).close()
            except psycopg.OperationalError:
                return False
            return True

        wait_for(accepts, "PostgreSQL to accept connections", timeout)
        yield server
    finally:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)  # "fast" shutdown
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(root, ignore_errors=True)
