"""The default `MAX_SESSIONS`: what the load bench measured per core, times the cores we may use."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bots.server.assemble import default_max_sessions, server_config, usable_cores
from bots.settings import Settings

pytestmark = pytest.mark.unit

AFFINITY = len(os.sched_getaffinity(0))


def cpu_max(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cpu.max"
    path.write_text(text)
    return path


def test_without_a_cgroup_quota_every_core_of_the_affinity_counts(tmp_path: Path) -> None:
    assert usable_cores(cpu_max(tmp_path, "max 100000\n")) == AFFINITY
    assert usable_cores(tmp_path / "absent") == AFFINITY


def test_a_containers_cpu_quota_caps_the_cores_rounding_up(tmp_path: Path) -> None:
    # `cpus: 0.5` in compose is "50000 100000": half a core still serves one core's share.
    assert usable_cores(cpu_max(tmp_path, "50000 100000\n")) == 1
    assert usable_cores(cpu_max(tmp_path, "150000 100000\n")) == min(AFFINITY, 2)


def test_an_unreadable_quota_is_ignored(tmp_path: Path) -> None:
    assert usable_cores(cpu_max(tmp_path, "garbage")) == AFFINITY


@given(st.integers(min_value=1, max_value=512))
def test_the_default_cap_is_two_sessions_per_core(cores: int) -> None:
    assert default_max_sessions(cores) == 2 * cores


def test_an_unset_max_sessions_takes_the_default_and_a_set_one_wins(tmp_path: Path) -> None:
    unset = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    assert server_config(unset, "webrtc", "127.0.0.1").limits.max_sessions == 2 * usable_cores()
    chosen = Settings(_env_file=None, data_dir=tmp_path, max_sessions=7)  # type: ignore[call-arg]
    assert server_config(chosen, "webrtc", "127.0.0.1").limits.max_sessions == 7
