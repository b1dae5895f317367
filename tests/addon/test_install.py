"""build_addon.py builds per-platform zips, and the Linux zip installs into real Blender (bpy,
headless, isolated user dirs), enables, and registers its operators, panel and preferences.

The first run downloads the wheels from PyPI into .cache/wheels (CI can reach PyPI); a failed
download FAILS this test with pip's reason. Installing runs in a subprocess: it changes global
Blender state (and preferences.addon_remove crashes in bpy).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("bpy", reason="needs bpy (pip install bpy==5.0.1)")

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
import build_addon  # noqa: E402

pytestmark = [pytest.mark.blender, pytest.mark.slow]

INSTALL_SCRIPT = r"""
import importlib.machinery, json, os, site, sys

# Blender's own Python has no grpc / protobuf / typing_extensions; this venv has them. Hide the
# venv's copies so that only the extension's bundled wheels can provide them, as in Blender.
VENV_SITE = {os.path.realpath(p) for p in site.getsitepackages()}
HIDDEN = ("grpc", "google", "typing_extensions")
assert not [m for m in sys.modules if m.split(".")[0] in HIDDEN], "imported before the hider"


class HideVenvCopies:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if path is not None or name.split(".")[0] not in HIDDEN:
            return None  # submodules search their parent's folder: wherever that came from
        outside = [p for p in sys.path if os.path.realpath(p or ".") not in VENV_SITE]
        spec = importlib.machinery.PathFinder.find_spec(name, outside)
        if spec is None:
            raise ModuleNotFoundError(f"No module named {name!r} outside the venv", name=name)
        return spec


sys.meta_path.insert(0, HideVenvCopies)
import bpy
zip_path, ext_dir = sys.argv[1], sys.argv[2]
prefs = bpy.context.preferences
repo = prefs.extensions.repos.new(name="ltx test", module="ltx_test", custom_directory=ext_dir, source="USER")
result = bpy.ops.extensions.package_install_files(repo=repo.module, filepath=zip_path, enable_on_install=True)
module = "bl_ext.ltx_test.ltx_neural_render"
addon = prefs.addons.get(module)
mod = sys.modules.get(module)
site = os.path.join(os.environ["BLENDER_USER_RESOURCES"], "extensions", ".local", "lib", "python{}.{}".format(*sys.version_info[:2]), "site-packages")
out = {
    "result": sorted(result),
    "enabled": addon is not None,
    "operators": sorted(n for n in dir(bpy.ops.ltx_render)),
    "panel": hasattr(bpy.types, "LTX_PT_render"),
    "prefs_profiles": addon is not None and hasattr(addon.preferences, "profiles"),
    "scene_settings": hasattr(bpy.context.scene, "ltx_render"),
    "module_file": getattr(mod, "__file__", ""),
    "site_packages": sorted(os.listdir(site)) if os.path.isdir(site) else [],
}
if addon is not None:
    item = addon.preferences.profiles.add()
    item.name, item.address = "local", "localhost:1"
    from importlib import import_module
    profiles = import_module(module + ".ui.preferences")
    out["profile"] = profiles.find_profile("local").address
    client = import_module(module + ".client.render_client")  # relative imports + bundled grpc/protobuf
    out["client_pb"] = client.pb.Capabilities(protocol_version="1.0").protocol_version
    grpc, protobuf = sys.modules["grpc"], sys.modules["google.protobuf"]  # what the add-on really loaded
    out["grpc_file"], out["protobuf_file"] = grpc.__file__, protobuf.__file__
    out["site"] = site
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def built_zips():
    """Build into .cache/addon-dist (wheels cached in .cache/wheels after the first download)."""
    try:
        return build_addon.build(ROOT / ".cache" / "addon-dist", ROOT / ".cache" / "wheels")
    except SystemExit as exc:  # a failed download is a failure with pip's reason, never a skip
        pytest.fail(f"build_addon.py failed: {exc}")


def test_gencode_pins_are_checked(tmp_path):
    assert "protobuf 7.36.2 loads gencode 7." in build_addon.check_gencode_pins()
    with pytest.raises(SystemExit, match="cannot load code generated"):
        build_addon.check_gencode_pins({**build_addon.PINS, "protobuf": "6.33.0"})
    with pytest.raises(SystemExit, match="cannot load code generated"):
        build_addon.check_gencode_pins({**build_addon.PINS, "protobuf": "7.30.0"})
    with pytest.raises(SystemExit, match="raise the grpcio pin"):
        build_addon.check_gencode_pins({**build_addon.PINS, "grpcio": "1.80.0"})


def test_one_zip_per_platform_with_only_its_wheels(built_zips):
    names = sorted(p.name for p in built_zips)
    assert names == [f"ltx_neural_render-0.1.0-{p}.zip" for p in ("linux_x64", "macos_arm64", "macos_x64",
                                                                   "windows_x64")]
    by_platform = {p.name.rsplit("-", 1)[1][:-4]: p for p in built_zips}
    with zipfile.ZipFile(by_platform["linux_x64"]) as zf:
        files = zf.namelist()
        manifest = zf.read("blender_manifest.toml").decode()
    wheels = sorted(f for f in files if f.startswith("wheels/"))
    assert [w.split("-")[0] for w in wheels] == ["wheels/grpcio", "wheels/grpcio", "wheels/protobuf",
                                                 "wheels/typing_extensions"]
    assert all("win" not in w and "macosx" not in w for w in wheels)
    assert {"cp311", "cp313"} == {w.split("-")[2] for w in wheels if w.startswith("wheels/grpcio")}
    assert 'platforms = ["linux-x64"]' in manifest
    assert "__init__.py" in files and "proto/render_pb2.py" in files
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]


def test_linux_zip_installs_and_registers_in_blender(built_zips, tmp_path):
    linux = next(p for p in built_zips if p.name.endswith("linux_x64.zip"))
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path / "user"), "PYTHONNOUSERSITE": "1"}
    proc = subprocess.run([sys.executable, "-c", INSTALL_SCRIPT, str(linux), str(tmp_path / "ext")], env=env,
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULT "):])
    assert out["result"] == ["FINISHED"] and out["enabled"]
    assert out["module_file"].startswith(str(tmp_path / "ext"))  # the installed copy, not the repo
    assert {"render_preview", "render_animation", "resume_jobs", "cancel", "test_connection", "preview_canvas",
            "redo_take"} <= set(out["operators"])
    assert out["panel"] and out["prefs_profiles"] and out["scene_settings"]
    assert {"grpc", "google", "typing_extensions.py"} <= set(out["site_packages"])  # wheels unpacked
    assert out["profile"] == "localhost:1" and out["client_pb"] == "1.0"
    # The bundled wheels are what loads, not the test venv's grpc/protobuf.
    site = Path(out["site"])
    assert site.is_relative_to(tmp_path / "user"), site
    assert Path(out["grpc_file"]).is_relative_to(site), out["grpc_file"]
    assert Path(out["protobuf_file"]).is_relative_to(site), out["protobuf_file"]
