"""Training test fixtures: one CPU thread, the tiny random LTX-2 written once per session."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    from render_backend.engine.ltx2.test_model import make_test_model

    return make_test_model(tmp_path_factory.mktemp("training") / "tiny-ltx2")


@pytest.fixture(scope="session")
def tiny_dev_model(tmp_path_factory):
    """The same tiny weights marked as a dev (guided) checkpoint."""
    from render_backend.engine.ltx2.test_model import make_test_model

    return make_test_model(tmp_path_factory.mktemp("training") / "tiny-ltx2-dev", variant="dev")
