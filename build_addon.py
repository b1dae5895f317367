"""Build the installable Blender extension: one zip per platform, with grpcio + protobuf wheels.

    python build_addon.py [--out dist/] [--cache .cache/wheels] [--blender-ext PATH]

1. Checks the pinned wheels against the generated gRPC code in blender_addon/proto (protobuf's
   gencode check refuses an older runtime or another major version; grpcio must be at least
   the version that generated *_pb2_grpc.py).
2. Downloads the wheels with `pip download --only-binary :all: --no-deps` for CPython 3.11
   (Blender 4.2-5.0) and 3.13 (Blender 5.1+) on manylinux x86_64, win_amd64 and macOS
   universal2 (arm64 + x86_64), into a cache folder (downloaded once).
3. Checks they are exactly the `wheels` listed in blender_addon/blender_manifest.toml.
4. Stages blender_addon + wheels/ and runs Blender's own `blender_ext.py build
   --split-platforms` (shipped inside the bpy package; plain Python runs it), which validates
   the manifest and writes ltx_neural_render-<version>-<platform>.zip with only that
   platform's wheels.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent
ADDON = ROOT / "blender_addon"
MANIFEST = ADDON / "blender_manifest.toml"
PINS = {"grpcio": "1.85.1", "protobuf": "7.36.2", "typing_extensions": "4.16.0"}
PYTHONS = ("3.11", "3.13")
# pip --platform tags per wheel family; universal2 covers macos-arm64 and macos-x64.
PLATFORM_TAGS = {
    "linux": ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"],
    "windows": ["win_amd64"],
    "macos": ["macosx_11_0_universal2", "macosx_10_9_universal2"],
}
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".*", "wheels")


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def check_gencode_pins(pins: dict[str, str] = PINS, proto_dir: Path = ADDON / "proto") -> str:
    """Fail unless the bundled protobuf/grpcio can load the generated code; returns a summary."""
    pb2 = (proto_dir / "render_pb2.py").read_text()
    match = re.search(r"ValidateProtobufRuntimeVersion\(\s*_runtime_version\.Domain\.PUBLIC,\s*(\d+),\s*(\d+),"
                      r"\s*(\d+),", pb2)
    if not match:
        raise SystemExit(f"cannot find the protobuf gencode version in {proto_dir / 'render_pb2.py'}")
    gencode = tuple(int(g) for g in match.groups())
    bundled = _version(pins["protobuf"])
    if bundled[0] != gencode[0] or bundled < gencode:
        raise SystemExit(f"bundled protobuf {pins['protobuf']} cannot load code generated for "
                         f"{'.'.join(map(str, gencode))}: pin protobuf >= that version with the same major, or "
                         f"regenerate with ./dev protos")
    grpc_match = re.search(r"GRPC_GENERATED_VERSION = '([\d.]+)'", (proto_dir / "render_pb2_grpc.py").read_text())
    if not grpc_match:
        raise SystemExit(f"cannot find GRPC_GENERATED_VERSION in {proto_dir / 'render_pb2_grpc.py'}")
    if _version(pins["grpcio"]) < _version(grpc_match.group(1)):
        raise SystemExit(f"bundled grpcio {pins['grpcio']} is older than the {grpc_match.group(1)} that generated "
                         f"render_pb2_grpc.py; raise the grpcio pin")
    return (f"protobuf {pins['protobuf']} loads gencode {'.'.join(map(str, gencode))}; grpcio {pins['grpcio']} >= "
            f"{grpc_match.group(1)}")


def download_wheels(cache: Path, pins: dict[str, str] = PINS, manifest: Path = MANIFEST) -> list[Path]:
    """pip download every (python, platform) combination into `cache`; returns the pinned wheels.
    Skips pip (and the network) when every wheel the manifest lists is already cached."""
    cache.mkdir(parents=True, exist_ok=True)
    listed = [Path(w).name for w in tomllib.loads(manifest.read_text()).get("wheels", [])]
    prefixes = [f"{name}-{version}-" for name, version in pins.items()]
    pinned = all(any(n.startswith(pre) for pre in prefixes) for n in listed) and \
        all(any(n.startswith(pre) for n in listed) for pre in prefixes)
    if listed and pinned and all((cache / name).is_file() for name in listed):
        return sorted(cache / name for name in listed)
    specs = [f"{name}=={version}" for name, version in pins.items()]
    for python in PYTHONS:
        nodot = python.replace(".", "")
        for family, tags in PLATFORM_TAGS.items():
            cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                   "--only-binary", ":all:", "--no-deps", "--implementation", "cp", "--python-version", python,
                   "--abi", f"cp{nodot}", "--abi", "abi3", "--abi", "none", "--dest", str(cache)]
            for tag in tags:
                cmd += ["--platform", tag]
            result = subprocess.run(cmd + specs, capture_output=True, text=True)
            if result.returncode != 0:
                errors = [ln for ln in (result.stderr + result.stdout).splitlines() if "ERROR" in ln]
                raise SystemExit(f"pip download of {', '.join(specs)} for CPython {python} on {family} failed "
                                 f"(is PyPI reachable?):\n  " + "\n  ".join(errors or result.stderr.splitlines()[-5:]))
    wheels = sorted(p for p in cache.glob("*.whl")
                    if any(p.name.startswith(f"{name}-{version}-") for name, version in pins.items()))
    return wheels


def check_manifest_wheels(wheels: list[Path], manifest: Path = MANIFEST) -> list[str]:
    """The manifest must list exactly the downloaded wheels (one source of truth, checked)."""
    listed = tomllib.loads(manifest.read_text()).get("wheels", [])
    want = [f"./wheels/{p.name}" for p in wheels]
    if sorted(listed) != want:
        missing = sorted(set(want) - set(listed))
        extra = sorted(set(listed) - set(want))
        raise SystemExit(f"{manifest} `wheels` do not match the pinned downloads.\n  missing: {missing}\n  "
                         f"not downloaded: {extra}\nSet wheels to:\n" + "\n".join(f'  "{w}",' for w in want))
    return listed


def find_blender_ext() -> Path:
    """blender_ext.py inside the installed bpy package (addons_core/bl_pkg/cli)."""
    spec = importlib.util.find_spec("bpy")
    roots = list(spec.submodule_search_locations or []) if spec else []
    for root in roots:
        found = sorted(Path(root).glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
        if found:
            return found[-1]
    raise SystemExit("blender_ext.py not found: install bpy (pip install bpy==5.0.1) or pass --blender-ext "
                     "<Blender>/<version>/scripts/addons_core/bl_pkg/cli/blender_ext.py")


def build(out: Path, cache: Path, blender_ext: Path | None = None) -> list[Path]:
    print(check_gencode_pins())
    wheels = download_wheels(cache)
    check_manifest_wheels(wheels)
    blender_ext = blender_ext or find_blender_ext()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ltx_addon_build_") as tmp:
        stage = Path(tmp) / "ltx_neural_render"
        shutil.copytree(ADDON, stage, ignore=_IGNORE)
        (stage / "wheels").mkdir()
        for wheel in wheels:
            shutil.copy2(wheel, stage / "wheels" / wheel.name)
        staged_out = Path(tmp) / "out"
        staged_out.mkdir()
        cmd = [sys.executable, str(blender_ext), "build", "--source-dir", str(stage), "--output-dir",
               str(staged_out), "--split-platforms"]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"blender_ext.py build failed:\n{result.stdout}{result.stderr}")
        zips = []
        for built in sorted(staged_out.glob("*.zip")):
            dest = out / built.name
            tmp_dest = dest.with_name(f".{dest.name}.tmp")
            shutil.copy2(built, tmp_dest)
            tmp_dest.replace(dest)  # a reader never sees a half-copied zip
            zips.append(dest)
    if not zips:
        raise SystemExit(f"blender_ext.py wrote no zip:\n{result.stdout}")
    return zips


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "dist", help="folder for the zips (default dist/)")
    ap.add_argument("--cache", type=Path, default=ROOT / ".cache" / "wheels", help="wheel download cache")
    ap.add_argument("--blender-ext", type=Path, help="path to Blender's blender_ext.py (default: from bpy)")
    args = ap.parse_args(argv)
    for path in build(args.out, args.cache, args.blender_ext):
        print(f"{path}  {path.stat().st_size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
