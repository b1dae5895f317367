"""Shared test setup: one CPU thread for torch (2-core CI machines), ONE tiny model and ONE loaded
engine for the whole session (engine, server and add-on tests all use them)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

CONTROL_X2 = "control_x2"  # the control LoRA's weights, metadata of a LoRA trained at reference factor 2

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Probe verdicts (blender_addon/core/probe_cache.py) of this session only, never the user's ~/.cache.
os.environ.setdefault("LTX_RENDER_CACHE_DIR", tempfile.mkdtemp(prefix="ltx-render-test-cache-"))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """The tiny LTX-2 and its LoRAs (render_backend/engine/ltx2/test_model.py), plus CONTROL_X2: the
    control LoRA's weights with the metadata of a LoRA trained at reference factor 2 (the engine reads
    the factor from the file)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from render_backend.engine.ltx2.test_model import make_test_model

    model = make_test_model(tmp_path_factory.mktemp("model") / "tiny-ltx2")
    loras = model / "loras"
    with safe_open(str(loras / "control.safetensors"), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    save_file(tensors, str(loras / f"{CONTROL_X2}.safetensors"),
              metadata={"reference_downscale_factor": "2", "ltx_blender_kind": "control"})
    return model


@pytest.fixture(scope="session")
def engine(tiny_model):
    """One stage at the request's size (no upsampler): most tests pin what one step does, with sizes
    multiples of 32. The default, two stages with the upsampler beside the model, is pinned in
    tests/engine/test_modes.py, test_variants.py and tests/server/test_service.py."""
    import torch

    from render_backend.engine.ltx2.engine import LTX2Engine

    torch.set_num_threads(1)
    e = LTX2Engine(str(tiny_model), device="cpu", upsampler=None)
    e.load()
    return e
