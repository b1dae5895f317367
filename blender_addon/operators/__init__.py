"""The add-on's operators. Their logic lives in session.py / queue.py (render flow) so it can
be driven without a window; the classes here only adapt it to Blender."""

from __future__ import annotations

import bpy

from . import render, setup

CLASSES = (*render.CLASSES, *setup.CLASSES)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    from .session import shutdown_worker

    shutdown_worker()
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
