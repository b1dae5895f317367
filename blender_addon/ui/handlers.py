"""After a .blend is opened: clear the live state a quit mid-render left in it, refresh the
panel's notes, and re-attach to the jobs it recorded (the take folders fill in and the strips
appear as the server finishes), without the user pressing anything.

Also keeps the panel's frame note current when the scene's frame range changes (msgbus), so
the panel's draw() never computes it.
"""

from __future__ import annotations

import bpy
from bpy.app.handlers import persistent

from ..core import jobs
from .properties import refresh_notes

# Scene properties the frame note depends on.
RANGE_PROPERTIES = ("frame_start", "frame_end", "use_preview_range", "frame_preview_start", "frame_preview_end")
_MSGBUS_OWNER = object()


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


def _range_changed(*_args) -> None:
    for scene in bpy.data.scenes:
        refresh_notes(scene)


def subscribe_frame_range() -> None:
    """Refresh the notes whenever a frame range property changes (needs an event loop: GUI only)."""
    bpy.msgbus.clear_by_owner(_MSGBUS_OWNER)
    for name in RANGE_PROPERTIES:
        bpy.msgbus.subscribe_rna(key=(bpy.types.Scene, name), owner=_MSGBUS_OWNER, args=(), notify=_range_changed)


def unsubscribe_frame_range() -> None:
    bpy.msgbus.clear_by_owner(_MSGBUS_OWNER)


@persistent
def reattach_after_load(_filepath) -> None:
    from ..operators import records

    # Sessions of the file that was open before belong to operators the load ended; keeping
    # them would make Resume skip the records of the same name in this file.
    records.LIVE.clear()
    for scene in bpy.data.scenes:
        settings = scene.ltx_render
        # No operator survives a file load: a "busy" saved by a Blender that quit (or crashed)
        # mid-render is stale. Resume (below) sets it again while it runs.
        if settings.busy:
            settings.busy = False
            pending = sum(1 for j in settings.jobs if j.state not in jobs.FINAL_STATES)
            settings.status_text = (f"the last render stopped with Blender: press Resume for its {pending} "
                                    f"unfinished shot(s)" if pending else "")
        count = unfinished_count(scene)
        if count:
            settings.status_text = f"{count} job(s) still on the server: re-attaching (or press Resume)"
        refresh_notes(scene)
    subscribe_frame_range()
    if any(unfinished_count(s) for s in bpy.data.scenes):
        bpy.app.timers.register(_resume_in_window, first_interval=1.0)
