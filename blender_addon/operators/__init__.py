"""The add-on's operators, one module per job: shot.py (Render Preview), animation.py (Render
Animation), resume.py (Resume, Cancel), setup.py (profiles, Test connection, canvas preview, Redo
take). records.py applies the network worker's events to the job records in the .blend; modal.py
is the modal loop they share. The render flow runs the same without a window (headless)."""

from __future__ import annotations

import bpy

from . import animation, resume, setup, shot

CLASSES = (*shot.CLASSES, *animation.CLASSES, *resume.CLASSES, *setup.CLASSES)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    from .records import shutdown_worker

    shutdown_worker()
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
