"""The GL probe with the real bpy: the child process runs once per environment, not once per export."""

from __future__ import annotations

import sys
import time

import pytest

bpy = pytest.importorskip("bpy")

from blender_addon.core import probe_cache  # noqa: E402
from blender_addon.gather import gl_probe  # noqa: E402

pytestmark = pytest.mark.blender


@pytest.fixture
def probes(monkeypatch, tmp_path):
    """Counts child processes; each test starts a new "session" with its own empty cache folder."""
    monkeypatch.delenv(gl_probe.ENGINE_ENV, raising=False)
    monkeypatch.setenv(probe_cache.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(gl_probe, "_cached", None)
    calls = []
    real = gl_probe._probe_command

    def counted(out):
        calls.append(out)
        return real(out)

    monkeypatch.setattr(gl_probe, "_probe_command", counted)
    return calls


def new_session(monkeypatch):
    monkeypatch.setattr(gl_probe, "_cached", None)  # what a new Blender process starts with


def test_the_second_run_takes_the_verdict_from_disk_without_a_child(probes, monkeypatch):
    t0 = time.perf_counter()
    first = gl_probe.workbench_available()
    probed_s = time.perf_counter() - t0
    assert len(probes) == 1
    new_session(monkeypatch)
    t0 = time.perf_counter()
    assert gl_probe.workbench_available() is first
    cached_s = time.perf_counter() - t0
    assert len(probes) == 1  # no second child process
    assert cached_s < 0.2 < probed_s, (probed_s, cached_s)


def test_another_display_environment_is_probed_again(probes, monkeypatch):
    gl_probe.workbench_available()
    new_session(monkeypatch)
    monkeypatch.setenv("EGL_PLATFORM", "surfaceless-test")
    gl_probe.workbench_available()
    assert len(probes) == 2


def test_a_crash_is_remembered_for_an_hour_and_a_timeout_not_at_all(probes, monkeypatch, tmp_path):
    monkeypatch.setattr(gl_probe, "_probe_command", lambda out: probes.append(out) or [sys.executable, "-c",
                                                                                       "import os; os.abort()"])
    assert gl_probe.workbench_available() is False
    new_session(monkeypatch)
    assert gl_probe.workbench_available() is False and len(probes) == 1  # remembered
    assert probe_cache.read_verdict(gl_probe.probe_key(), now=time.time() + probe_cache.FAILED_TTL_S + 1) is None

    (tmp_path / probe_cache.FILE_NAME).unlink()
    new_session(monkeypatch)
    monkeypatch.setattr(gl_probe, "PROBE_TIMEOUT_S", 1)
    monkeypatch.setattr(gl_probe, "_probe_command", lambda out: probes.append(out) or [sys.executable, "-c",
                                                                                       "import time; time.sleep(30)"])
    assert gl_probe.workbench_available() is False
    assert probe_cache.read_verdict(gl_probe.probe_key()) is None  # inconclusive: asked again next run
    assert not (tmp_path / probe_cache.FILE_NAME).exists()
