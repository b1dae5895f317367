"""Is a tiny test model already on disk? Answered without torch (test_model.py writes the marker).

`./dev demo` asks this on every run; importing test_model.py for it would import torch into a
process that only builds a Blender scene and talks gRPC (~2 s on a 2-core machine).
"""

from __future__ import annotations

from pathlib import Path

TEST_MODEL_VERSION = "tiny-ltx2/4"  # 4: generations 2.0 / 2.3 / 2.5, published LoRA stand-ins
COMPLETE_MARKER = "COMPLETE"


def is_complete(model_dir: str | Path, variant: str | None = None, version: str | None = None) -> bool:
    """True when `model_dir` holds a fully written test model of this format (and of `variant` and
    `version`, when given). Only make_test_model reads the marker: the engine reads the model's files."""
    marker = Path(model_dir) / COMPLETE_MARKER
    if not marker.is_file():
        return False
    fmt, written_variant, written_version = (marker.read_text().split() + ["", "", ""])[:3]
    return fmt == TEST_MODEL_VERSION and variant in (None, written_variant) and version in (None, written_version)
