"""After a .blend is opened: re-attach to the jobs it recorded (the take folders fill in and
the strips appear as the server finishes), without the user pressing anything."""

from __future__ import annotations

import bpy
from bpy.app.handlers import persistent

from ..core import jobs


def unfinished_count(scene: bpy.types.Scene) -> int:
    return sum(1 for j in scene.ltx_render.jobs if j.job_id and j.state in jobs.ON_SERVER_STATES)


def _resume_in_window():
    """Timer callback: run Resume (modal) with a window context; a no-op headless."""
    wm = bpy.context.window_manager
    if wm is None or not wm.windows:
        return None
    window = wm.windows[0]
    with bpy.context.temp_override(window=window, screen=window.screen):
        bpy.ops.ltx_render.resume_jobs("INVOKE_DEFAULT")
    return None


@persistent
def reattach_after_load(_filepath) -> None:
    for scene in bpy.data.scenes:
        count = unfinished_count(scene)
        if count:
            scene.ltx_render.status_text = f"{count} job(s) still on the server: re-attaching (or press Resume)"
    if any(unfinished_count(s) for s in bpy.data.scenes):
        bpy.app.timers.register(_resume_in_window, first_interval=1.0)
