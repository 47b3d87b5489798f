"""The fleet of docker-compose.yml's `scale` profile on our own daemon: HAProxy, three bot replicas,
PostgreSQL and the emulator, and what a test does to them.

`docker_session()` is the daemon with every image the fleet needs (the project's, loaded from the
cache or built offline, and HAProxy's and PostgreSQL's, built offline on a Debian base that
already holds the packages); `Fleet.up()` brings the fleet up with `--profile scale up -d
--no-build haproxy` and waits until HAProxy sends requests to all three replicas; then the test
can send requests through HAProxy and see which replica answered (HAProxy's `X-Served-By`),
stop a replica with SIGTERM (it drains), kill it with SIGKILL (`docker kill`, or the process itself
so that Docker's restart policy brings it back), start it again, run Python in a bot container,
and read PostgreSQL with `psql`. `Fleet.down()` takes it all down with `down -v --remove-orphans`.

Every wait is for an event or a polled state (`testkit.waiting.wait_for`), never a fixed sleep.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from docker_harness import (
    BASE_IMAGE,
    BUILDER_IMAGE,
    SERVICES_IMAGE,
    BuiltImage,
    ComposeProject,
    DockerDaemon,
    HarnessError,
    apt_install,
    build_image,
    build_service_images,
    compose_v2,
    free_port,
    missing_packages,
    rootfs_tarballs,
    services_rootfs_tarball,
    timed,
    wheelhouse,
    write_env_file,
)

from testkit.waiting import wait_for

REPLICAS = ("bot-1", "bot-2", "bot-3")
SERVICES = ("emulator", "postgres", *REPLICAS, "haproxy")
SERVED_BY = "x-served-by"
"""HAProxy's response header naming the replica that answered (deploy/haproxy/haproxy.cfg)."""
CI = os.environ.get("CI", "").lower() == "true"


def say(request: pytest.FixtureRequest, line: str, prefix: str = "fleet") -> None:
    """A line in pytest's output even when output is captured (sizes and times to report)."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        reporter.write_line(f"[{prefix}] {line}")


def ensure_tools() -> None:
    """Skip with the reason, or (as root, and always under CI) install what is missing."""
    missing = missing_packages()
    if os.geteuid() != 0:
        reason = (
            "the docker tests start their own dockerd and build base images with debootstrap, "
            "which needs root"
            + (
                f"; Docker is not installed either (apt-get install {' '.join(missing)})"
                if missing
                else ""
            )
        )
        if CI:
            pytest.fail(f"CI=true: {reason}")
        pytest.skip(reason)
    if missing:
        apt_install(missing)
    still = missing_packages()
    if still:
        pytest.fail(f"apt-get install did not provide {still}")


# ---------------------------------------------------------------------- the daemon and its images


@dataclass
class DockerSession:
    daemon: DockerDaemon
    image: BuiltImage
    services: dict[str, BuiltImage]
    workdir: Path
    results: dict[str, Any]


@contextlib.contextmanager
def docker_session(
    results: dict[str, Any], *, services: bool = True, prefix: str = "gla-fleet-"
) -> Iterator[DockerSession]:
    """Our daemon with the base images, the project's image and (with `services`) the fleet's
    service images; at the end every image is removed, the daemon stopped, and `HarnessError`
    raised if anything was left behind (containers, networks, volumes; then processes, mounts,
    interfaces)."""
    started = time.monotonic()
    with timed() as t:
        base_tar, build_tar = rootfs_tarballs()
        services_tar = services_rootfs_tarball() if services else None
    results["rootfs_s"] = round(t[0], 1)
    with timed() as t:
        wheelhouse()
    results["wheelhouse_s"] = round(t[0], 1)
    # A short path: unix socket paths under the exec root must stay below 108 bytes.
    root = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    workdir = root / "work"
    workdir.mkdir()
    try:
        daemon = DockerDaemon.start(root / "d")
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    tags = [BASE_IMAGE, BUILDER_IMAGE, *([SERVICES_IMAGE] if services_tar else [])]
    problems: list[str] = []
    try:
        with timed() as t:
            daemon.import_image(base_tar, BASE_IMAGE)
            daemon.import_image(build_tar, BUILDER_IMAGE)
            if services_tar is not None:
                daemon.import_image(services_tar, SERVICES_IMAGE)
        results["import_s"] = round(t[0], 1)
        suffix = f"test-{uuid.uuid4().hex[:8]}"
        image = build_image(daemon, f"gemini-live-agent:{suffix}")
        tags.append(image.tag)
        results.update(
            image_bytes=image.size_bytes,
            build_s=round(image.build_seconds, 1),
            build_from_cache=image.from_cache,
        )
        built_services = build_service_images(daemon, suffix) if services_tar else {}
        tags += [built.tag for built in built_services.values()]
        for name, built in built_services.items():
            results[f"{name}_image_bytes"] = built.size_bytes
            results[f"{name}_build_s"] = round(built.build_seconds, 1)
        yield DockerSession(daemon, image, built_services, workdir, results)
    finally:
        try:
            for tag in tags:
                daemon.docker("rmi", "-f", tag, check=False)
            problems += [f"{kind} left: {items}" for kind, items in daemon.leftovers().items()]
        finally:
            left = daemon.stop()
            problems += [f"{kind} left after dockerd stopped: {v}" for kind, v in left.items()]
            if daemon.process.returncode not in (0, -15):
                problems.append(f"dockerd exited with {daemon.process.returncode}: {daemon.log()}")
            shutil.rmtree(root, ignore_errors=True)
            if root.exists():
                problems.append(f"{root} could not be removed")
        results["total_s"] = round(time.monotonic() - started, 1)
    if problems:
        raise HarnessError("\n".join(problems))


# ---------------------------------------------------------------------- the fleet


@dataclass
class Fleet:
    """The `scale` profile of one compose project, reached through HAProxy on `port`."""

    project: ComposeProject
    port: int
    password: str
    up_seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def create(cls, session: DockerSession, settings: Mapping[str, str] | None = None) -> Fleet:
        """A project (Compose v2, profile `scale`) on the session's images; nothing started yet."""
        port = free_port()
        password = uuid.uuid4().hex
        name = f"glafleet{uuid.uuid4().hex[:6]}"
        env = {
            "AGENT_IMAGE": session.image.tag,
            "HAPROXY_IMAGE": session.services["haproxy"].tag,
            "POSTGRES_IMAGE": session.services["postgres"].tag,
            "FLEET_PORT": str(port),
            "POSTGRES_PASSWORD": password,
            **(settings or {}),
        }
        env_file = write_env_file(session.workdir / f"{name}.env", env)
        project = ComposeProject(
            "docker compose v2",
            [str(compose_v2())],
            name,
            session.daemon,
            env_file,
            profiles=["scale"],
        )
        return cls(project, port, password)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> httpx.Client:
        """An HTTP client for HAProxy's frontend (a new connection per request: no keep-alive,
        so each request is balanced on its own)."""
        return httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(20.0),
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    # -------------------------------------------------------------- up and down

    def up(self, within: float = 300.0) -> float:
        """`up -d --no-build haproxy` (which brings its dependencies), then until every service is
        healthy and HAProxy sends requests to all three replicas; the seconds that took."""
        started = time.monotonic()
        deadline = started + within
        self.project("up", "-d", "--no-build", "haproxy", timeout=within)
        self.timings["up_returned_s"] = time.monotonic() - started
        for service in SERVICES:
            self.wait_healthy(service, deadline)
        self.timings["healthy_s"] = time.monotonic() - started
        self.wait_in_rotation(set(REPLICAS), deadline - time.monotonic())
        self.up_seconds = time.monotonic() - started
        return self.up_seconds

    def down(self) -> None:
        done = self.project(
            "down", "-v", "--remove-orphans", "--timeout", "10", timeout=180, check=False
        )
        if done.returncode != 0:
            raise HarnessError(f"down failed:\n{done.stdout}{done.stderr}")

    # -------------------------------------------------------------- through HAProxy

    @staticmethod
    def served_by(response: httpx.Response) -> str:
        return response.headers.get(SERVED_BY, "")

    def sample(self, n: int = 6, path: str = "/healthz") -> list[tuple[int, str]]:
        """`n` GETs of `path` through HAProxy: (status, replica that answered) for each."""
        with self.client() as client:
            out = []
            for _ in range(n):
                response = client.get(path)
                out.append((response.status_code, self.served_by(response)))
            return out

    def in_rotation(self, n: int = 6) -> set[str]:
        """The replicas that answered `n` requests (leastconn with equal loads goes round robin,
        so 6 sequential requests reach each replica that is up)."""
        return {who for status, who in self.sample(n) if status == 200}

    def wait_in_rotation(self, expected: set[str], within: float = 60.0) -> float:
        """Until requests through HAProxy are answered by exactly `expected`; seconds taken."""
        started = time.monotonic()
        seen: set[str] = set()

        def reached() -> bool:
            nonlocal seen
            try:
                seen = self.in_rotation()
            except httpx.HTTPError:
                return False
            return seen == expected

        try:
            wait_for(reached, f"HAProxy to send requests to {sorted(expected)}", within, poll=0.2)
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}; last answered by {sorted(seen)}; haproxy says:\n{self.logs('haproxy', 40)}"
            ) from None
        return time.monotonic() - started

    def start_session(self, client: httpx.Client) -> httpx.Response:
        """`POST /start` as the page sends it."""
        return client.post("/start", json={"enableDefaultIceServers": False, "body": {}})

    # -------------------------------------------------------------- replicas

    def container(self, service: str) -> str:
        """The service's container, running or not."""
        cid = self.project("ps", "-a", "-q", service).stdout.strip()
        if not cid:
            raise HarnessError(f"no container for {service}")
        return cid

    def wait_healthy(self, service: str, deadline: float) -> None:
        """Until `service` runs and is healthy (through Docker's restarts); HarnessError, with its
        logs, if it exits or the `deadline` (monotonic) passes first."""
        last = ""

        def healthy() -> bool:
            nonlocal last
            state = self.inspect(service)["State"]
            last = f"{state['Status']}/{(state.get('Health') or {}).get('Status', 'no health')}"
            if state["Status"] in ("exited", "dead") and not state.get("Restarting"):
                raise HarnessError(f"{service} is {last}:\n{self.logs(service, 60)}")
            return bool(last == "running/healthy")

        try:
            wait_for(healthy, f"{service} to be healthy", deadline - time.monotonic(), poll=0.25)
        except AssertionError:
            raise HarnessError(f"{service} is {last}:\n{self.logs(service, 60)}") from None

    def inspect(self, service: str) -> dict[str, Any]:
        (info,) = json.loads(self.project.daemon.docker("inspect", self.container(service)).stdout)
        return dict(info)

    def address(self, service: str) -> str:
        """The service container's address on the project's network ("" while it is stopped)."""
        networks = self.inspect(service)["NetworkSettings"]["Networks"]
        return str(next(iter(networks.values()))["IPAddress"]) if networks else ""

    def logs(self, service: str, tail: int | None = None) -> str:
        argv = ["logs", "--no-color", *(["--tail", str(tail)] if tail else []), service]
        done = self.project(*argv, check=False)
        return done.stdout + done.stderr

    def haproxy_events(self, replica: str, state: str) -> int:
        """How often HAProxy has logged `Server bots/<replica> is <state>` (UP, DOWN)."""
        return self.logs("haproxy").count(f"Server bots/{replica} is {state}")

    def wait_haproxy_event(
        self, replica: str, state: str, before: int, within: float = 30
    ) -> float:
        """Until HAProxy logs `replica` going `state` once more than `before` times; seconds."""
        started = time.monotonic()
        wait_for(
            lambda: self.haproxy_events(replica, state) > before,
            f"HAProxy to log {replica} {state}",
            within,
            poll=0.2,
        )
        return time.monotonic() - started

    def stop(self, *services: str, grace: int = 30) -> float:
        """`docker compose stop -t GRACE`: SIGTERM, then SIGKILL after `grace` s; seconds taken."""
        with timed() as t:
            self.project("stop", "-t", str(grace), *services, timeout=grace + 60)
        return t[0]

    def restart(self, service: str, grace: int = 30, within: float = 120) -> float:
        """`docker compose restart -t GRACE` (SIGTERM, grace, start) until healthy again."""
        started = time.monotonic()
        self.project("restart", "-t", str(grace), service, timeout=grace + within)
        self.wait_healthy(service, started + within)
        return time.monotonic() - started

    def start(self, *services: str, within: float = 120) -> float:
        """`docker compose start` of stopped services, until healthy; seconds taken."""
        started = time.monotonic()
        self.project("start", *services, timeout=within)
        for service in services:
            self.wait_healthy(service, started + within)
        return time.monotonic() - started

    def recreate(self, service: str, within: float = 120) -> float:
        """`up -d --no-deps --force-recreate` of one service (a new container, and so, as a rule,
        a new address), until healthy; seconds taken."""
        started = time.monotonic()
        argv = ["up", "-d", "--no-deps", "--no-build", "--force-recreate", service]
        self.project(*argv, timeout=within)
        self.wait_healthy(service, started + within)
        return time.monotonic() - started

    @contextlib.contextmanager
    def address_held(self) -> Iterator[str]:
        """A container of no service on the project's network while the block runs, so that it
        holds the lowest free address (one a stopped replica has just given back); its address.
        Removed at the end, so `down` leaves nothing."""
        name = f"{self.project.name}-placeholder"
        network = f"{self.project.name}_default"
        docker = self.project.daemon.docker
        docker(
            "run", "-d", "--rm", "--name", name, f"--network={network}", "--read-only",
            "--cap-drop=ALL", "--entrypoint", "sleep", SERVICES_IMAGE, "infinity",
        )  # fmt: skip
        try:
            yield docker(
                "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name
            ).stdout.strip()
        finally:
            docker("rm", "-f", name, check=False)

    def kill(self, service: str) -> None:
        """`docker kill -s KILL`: gone at once, no drain; Docker counts it as stopped by hand, so
        its restart policy does not bring it back (`start` does)."""
        self.project.daemon.docker("kill", "-s", "KILL", self.container(service))

    def crash(self, service: str) -> int:
        """SIGKILL to the container's main process from this host, as the kernel's OOM killer
        would: Docker sees it die by itself and restarts it (`restart: unless-stopped`). Returns
        the restart count it had before."""
        info = self.inspect(service)
        pid = int(info["State"]["Pid"])
        if pid <= 0:
            raise HarnessError(f"{service} is not running")
        os.kill(pid, signal.SIGKILL)
        return int(info["RestartCount"])

    def wait_restarted(self, service: str, count_before: int, within: float = 120) -> float:
        """Until Docker has restarted `service` (RestartCount grew) and it is healthy again."""
        started = time.monotonic()
        wait_for(
            lambda: int(self.inspect(service)["RestartCount"]) > count_before,
            f"Docker to restart {service}",
            within,
            poll=0.2,
        )
        self.wait_healthy(service, started + within)
        return time.monotonic() - started

    def python(self, service: str, code: str, timeout: float = 60) -> str:
        """Run `python -c code` in the service's container (as its user); its stdout."""
        done = self.project.daemon.docker(
            "exec", self.container(service), "python", "-c", code, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise HarnessError(f"python in {service} exited {done.returncode}:\n{done.stderr}")
        return done.stdout

    def http_from(self, service: str, url: str, method: str = "GET", n: int = 1) -> list[Any]:
        """`n` requests to `url` made inside `service`'s container: [status, JSON body] each."""
        code = (
            "import json, sys, urllib.request as u, urllib.error as e\n"
            "out = []\n"
            f"for _ in range({n}):\n"
            f"    data = b'{{}}' if {method!r} == 'POST' else None\n"
            f"    r = u.Request({url!r}, data=data, method={method!r},"
            " headers={'Content-Type': 'application/json'})\n"
            "    try:\n"
            "        with u.urlopen(r, timeout=10) as resp:\n"
            "            out.append([resp.status, json.load(resp)])\n"
            "    except e.HTTPError as err:\n"
            "        out.append([err.code, json.load(err)])\n"
            "print(json.dumps(out))\n"
        )
        result: list[Any] = json.loads(self.python(service, code))
        return result

    # -------------------------------------------------------------- PostgreSQL

    def sql(self, query: str, database: str = "agent") -> list[list[str]]:
        """Rows of `query`, run by psql as the superuser over the container's Unix socket."""
        done = self.project.daemon.docker(
            "exec",
            self.container("postgres"),
            "psql",
            "--no-psqlrc",
            "-v",
            "ON_ERROR_STOP=1",
            "-At",
            "-F",
            "\t",
            "-d",
            database,
            "-c",
            query,
        )
        return [line.split("\t") for line in done.stdout.splitlines() if line]

    def psql_over_tcp(self, user: str, password: str, query: str = "select 1") -> tuple[int, str]:
        """psql in the postgres container to its own network address (so pg_hba's `host` rules
        apply, as for a replica) as `user` with `password`: (exit status, output)."""
        done = self.project.daemon.docker(
            "exec",
            "-e",
            f"PGPASSWORD={password}",
            "-e",
            "PGCONNECT_TIMEOUT=5",
            self.container("postgres"),
            "psql",
            "--no-psqlrc",
            "-At",
            "-h",
            self.address("postgres"),
            "-U",
            user,
            "-d",
            "agent",
            "-c",
            query,
            check=False,
        )
        return done.returncode, (done.stdout + done.stderr).strip()
