"""Shared test setup: one CPU thread for torch (2-core CI machines), tiny model cached per session."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
