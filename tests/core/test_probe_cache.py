"""The on-disk verdicts of the GL probe: keyed by what could change the answer, and expiring."""

from __future__ import annotations

from pathlib import Path

from blender_addon.core import probe_cache
from blender_addon.core.probe_cache import FAILED_TTL_S, OK_TTL_S, probe_key, read_verdict, write_verdict


def key(**env):
    return probe_key("5.0.1", "/usr/bin/python3.11", "/venv/bin/python", environ=env, vendor_files=[])


def test_cache_folder_follows_the_override_then_xdg_then_home():
    assert probe_cache.cache_dir({"LTX_RENDER_CACHE_DIR": "/x/c", "XDG_CACHE_HOME": "/y"}) == Path("/x/c")
    assert probe_cache.cache_dir({"XDG_CACHE_HOME": "/y"}) == Path("/y/ltx-render")
    assert probe_cache.cache_dir({}).parts[-2:] == (".cache", "ltx-render")


def test_the_key_changes_with_blender_python_display_and_egl_drivers():
    base = key(DISPLAY=":0")
    assert base == key(DISPLAY=":0", HOME="/elsewhere")  # an unrelated variable does not matter
    assert base != key(DISPLAY=":1")
    assert base != key(DISPLAY=":0", WAYLAND_DISPLAY="wayland-0")
    assert base != key(DISPLAY=":0", EGL_PLATFORM="surfaceless")
    assert base != key(DISPLAY=":0", LTX_EXPORT_ENGINE="auto")
    assert base != probe_key("4.2.0", "/usr/bin/python3.11", "/venv/bin/python", environ={"DISPLAY": ":0"},
                             vendor_files=[])
    assert base != probe_key("5.0.1", "/usr/bin/python3.11", "/other/bin/python", environ={"DISPLAY": ":0"},
                             vendor_files=[])
    assert base != probe_key("5.0.1", "/usr/bin/python3.11", "/venv/bin/python", environ={"DISPLAY": ":0"},
                             vendor_files=["/usr/share/glvnd/egl_vendor.d/10_nvidia.json:107:1700000000"])


def test_an_ok_verdict_holds_a_week_and_a_failed_one_an_hour(tmp_path):
    write_verdict("ok-key", True, tmp_path, now=1000.0)
    write_verdict("bad-key", False, tmp_path, now=1000.0)
    assert read_verdict("ok-key", tmp_path, now=1000.0 + OK_TTL_S - 1) is True
    assert read_verdict("ok-key", tmp_path, now=1000.0 + OK_TTL_S + 1) is None
    assert read_verdict("bad-key", tmp_path, now=1000.0 + FAILED_TTL_S - 1) is False
    assert read_verdict("bad-key", tmp_path, now=1000.0 + FAILED_TTL_S + 1) is None
    assert read_verdict("other-key", tmp_path, now=1000.0) is None
    assert read_verdict("ok-key", tmp_path, now=999.0 - 3600) is None  # a clock set back: ask again


def test_a_broken_or_unwritable_cache_means_probing_again_not_an_error(tmp_path):
    (tmp_path / probe_cache.FILE_NAME).write_text("{not json")
    assert read_verdict("k", tmp_path) is None
    write_verdict("k", True, tmp_path)  # replaces the broken file
    assert read_verdict("k", tmp_path) is True
    blocker = tmp_path / "file"
    blocker.write_text("")
    write_verdict("k", True, blocker / "sub")  # cannot create a folder under a file: silently skipped
    assert read_verdict("k", blocker / "sub") is None
    for damaged in ('"yesterday"', "null"):  # an entry with a damaged time: probe again
        (tmp_path / probe_cache.FILE_NAME).write_text(f'{{"k": {{"ok": true, "time": {damaged}}}}}')
        assert read_verdict("k", tmp_path) is None
