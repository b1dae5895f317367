"""blender_addon/client/processes.py: the parts of process handling that differ between POSIX and
Windows. The POSIX calls run for real here; of the Windows branch, only what is pure can run on
this machine (splitting a typed command, the detach flags)."""

from __future__ import annotations

import subprocess
import sys
import time

from blender_addon.client import processes


def test_a_quoted_windows_path_with_spaces_is_one_argument_without_its_quotes():
    typed = r'"C:\Program Files\LTX Render\venv\Scripts\render-backend.exe" --data-dir D:\renders'
    assert processes.split_command(typed, windows=True) == [
        r"C:\Program Files\LTX Render\venv\Scripts\render-backend.exe", "--data-dir", r"D:\renders"]
    # Unquoted, the backslashes survive (a POSIX split would eat them: C:venvScriptsrender-backend.exe).
    assert processes.split_command(r"C:\venv\Scripts\render-backend.exe", windows=True) == [
        r"C:\venv\Scripts\render-backend.exe"]
    assert processes.split_command(r"C:\venv\Scripts\render-backend.exe", windows=False) == [
        "C:venvScriptsrender-backend.exe"]


def test_a_posix_command_is_split_like_a_shell():
    assert processes.split_command("'/opt/my venv/bin/render-backend' --log-level info", windows=False) == [
        "/opt/my venv/bin/render-backend", "--log-level", "info"]


def test_a_detached_server_gets_its_own_session_or_process_group():
    assert processes.detached(windows=False) == {"start_new_session": True}
    flags = processes.detached(windows=True)["creationflags"]
    assert flags == 0x08000000 | 0x00000200  # CREATE_NO_WINDOW | CREATE_NEW_PROCESS_GROUP


def test_a_child_that_exited_is_not_alive_and_has_no_command_line():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while child.poll() is None and time.monotonic() < deadline:  # poll() reaps it, as a stale pid would be
        time.sleep(0.02)
    assert not processes.alive(child.pid)
    assert processes.command_line(child.pid) is None
    assert not processes.alive(0) and not processes.alive(-1)


def test_a_running_process_is_alive_shows_its_command_line_and_stops_when_asked():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "render_backend-marker"])
    try:
        assert processes.alive(child.pid)
        line = processes.command_line(child.pid)
        assert line is not None and line[-1] == "render_backend-marker" and "-c" in line
        assert processes.terminate(child.pid)
        assert child.wait(timeout=10) != 0
        assert not processes.alive(child.pid)
        assert processes.terminate(child.pid) is False  # gone: nothing to deliver
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
