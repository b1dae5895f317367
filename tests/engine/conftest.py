"""Engine test fixtures beyond the shared tiny model and engine (tests/conftest.py): the other
generations and variants, and a canvas factory."""

from __future__ import annotations

import numpy as np
import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_dev_model(tmp_path_factory):
    """The same tiny weights marked as a dev (non-distilled) checkpoint."""
    from render_backend.engine.ltx2.test_model import make_test_model

    return make_test_model(tmp_path_factory.mktemp("engine") / "tiny-ltx2-dev", variant="dev")


@pytest.fixture(scope="session")
def tiny_model_2_3(tmp_path_factory):
    """The tiny LTX-2.3 (gated attention, cross-attention modulation, 48 kHz vocoder with BWE)."""
    from render_backend.engine.ltx2.test_model import make_test_model

    return make_test_model(tmp_path_factory.mktemp("engine") / "tiny-ltx2.3", version="2.3")


@pytest.fixture(scope="session")
def tiny_model_2_5(tmp_path_factory):
    """The tiny LTX-2.5 (as 2.3 plus Gemma 4, bias-free feed-forward, diffusion VAE decoder)."""
    from render_backend.engine.ltx2.test_model import make_test_model

    return make_test_model(tmp_path_factory.mktemp("engine") / "tiny-ltx2.5", version="2.5")


@pytest.fixture(scope="session")
def engine_2_3(tiny_model_2_3):
    """One-stage engine on the tiny LTX-2.3."""
    from render_backend.engine.ltx2.engine import LTX2Engine

    e = LTX2Engine(str(tiny_model_2_3), device="cpu", upsampler=None)
    e.load()
    return e


@pytest.fixture(scope="session")
def canvas():
    """A random control canvas factory: canvas(frames, height, width, seed) -> (F, H, W, 3) uint8."""

    def make(frames=9, height=64, width=64, seed=0):
        return np.random.default_rng(seed).integers(0, 256, (frames, height, width, 3), dtype=np.uint8)

    return make
