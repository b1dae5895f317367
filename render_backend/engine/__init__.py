"""Render engines behind one contract (contract.py): the server talks to `RenderEngine` only.

Model-agnostic parts live here: the request and its one check (request.py, checks.py), LoRA
files and kinds (loras.py), strength maps (strength.py), the camera classifier and the camera
trajectory canvas (camera_moves.py, camera_canvas.py). Each model family has its own package
(ltx2/: Lightricks LTX-2 through diffusers). A new engine: a package with a class that
satisfies RenderEngine, added to ENGINES.
"""

from __future__ import annotations

from .contract import EngineCapabilities, LoraCapability, RenderEngine, RequestLimits

ENGINES = {"ltx2": "render_backend.engine.ltx2.engine:LTX2Engine"}


def engine_class(name: str) -> type:
    """The engine class registered as `name` (imported on first use: torch loads only then)."""
    import importlib

    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}; available: {', '.join(sorted(ENGINES))}")
    module, _, attr = ENGINES[name].partition(":")
    return getattr(importlib.import_module(module), attr)


__all__ = ["ENGINES", "EngineCapabilities", "LoraCapability", "RenderEngine", "RequestLimits", "engine_class"]
