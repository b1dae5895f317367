"""The generated gRPC code in both packages must match protos/ (one command regenerates it)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_generated_code_matches_protos():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_both_copies_are_identical_and_relative():
    names = ["render_pb2.py", "render_pb2_grpc.py", "render_pb2.pyi"]
    for name in names:
        backend = (ROOT / "render_backend" / "proto" / name).read_text()
        addon = (ROOT / "blender_addon" / "proto" / name).read_text()
        assert backend == addon, name
    grpc_code = (ROOT / "blender_addon" / "proto" / "render_pb2_grpc.py").read_text()
    assert "from . import render_pb2" in grpc_code
    assert "import ltxrender" not in grpc_code


def test_stale_code_is_detected(tmp_path):
    # Copy the generator next to a modified proto tree and check it reports staleness.
    import shutil

    shutil.copytree(ROOT / "protos", tmp_path / "protos")
    shutil.copytree(ROOT / "scripts", tmp_path / "scripts")
    for pkg in ("render_backend", "blender_addon"):
        shutil.copytree(ROOT / pkg / "proto", tmp_path / pkg / "proto")
    proto = tmp_path / "protos" / "ltxrender" / "v1" / "render.proto"
    proto.write_text(proto.read_text().replace("message ListJobsRequest {", "message ListJobsRequest {\n  string added = 99;"))
    result = subprocess.run([sys.executable, str(tmp_path / "scripts" / "gen_protos.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert "stale" in result.stdout
