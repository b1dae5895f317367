"""Render Animation: a long range cut by plan_shots into model-sized shots, exported one at a time
on the main thread while the server renders the previous ones; resumable (shots already done or
on the server are skipped)."""

from __future__ import annotations

import bpy
from bpy.props import IntProperty

from ..client import worker as wk
from ..client.profiles import ServerProfile
from ..core import jobs
from ..core.planning import ShotPlan, plan_shots, snap_frames
from ..ui.preferences import profile_limits
from . import records
from .modal import USER_ERRORS, ServerOptions
from .resume import JobsWatch
from .shot import ShotRender


def shots_done(scene: bpy.types.Scene) -> set[tuple[int, int]]:
    """(frame_start, frame_end) of shots already rendered or still on the server."""
    return {(j.frame_start, j.frame_end) for j in scene.ltx_render.jobs
            if j.state == jobs.DONE or (j.job_id and j.state in jobs.ON_SERVER_STATES)}


class AnimationRender:
    """Render Animation: export shot after shot; each goes to the server as soon as it is
    exported. Shots already done (or on the server) are skipped, so pressing the button again
    after a crash continues where it stopped."""

    def __init__(self, scene: bpy.types.Scene, profile: ServerProfile, plans: list[ShotPlan],
                 worker: wk.RenderWorker | None = None):
        self.scene_name, self.profile = scene.name, profile
        self.worker = worker or records.get_worker()
        have = shots_done(scene)
        self.pending = [p for p in plans if (p.frame_start, p.frame_end) not in have]
        self.skipped = len(plans) - len(self.pending)
        self.current: ShotRender | None = None
        self.keys: list[str] = []
        self.cancelled = False

    def tick(self, budget_s: float = 0.05) -> bool:
        scene = bpy.data.scenes[self.scene_name]
        if self.current is not None and self.current.exporting:
            self.current.tick(budget_s)
        elif self.pending and not self.cancelled:
            plan = self.pending.pop(0)
            self.current = ShotRender(scene, self.profile, plan.frame_start, plan.frame_end, self.worker,
                                         trim_start=plan.trim_start, trim_end=plan.trim_end)
            self.keys.append(self.current.request_id)
        records.dispatch_events(self.worker)
        if self.pending and not self.cancelled:
            return False
        if self.current is not None and self.current.exporting:
            return False
        if not JobsWatch(scene, self.keys, lambda _name: self.profile, self.worker).tick():
            return False
        for key in self.keys:
            records.LIVE.pop(key, None)
        return True

    def cancel(self) -> None:
        self.cancelled = True
        self.pending.clear()
        scene = bpy.data.scenes[self.scene_name]
        for key in self.keys:
            live = records.LIVE.get(key)
            item = records.find_job(scene, key)
            if live is not None:
                live.cancel()
            elif item is not None and item.job_id and item.state not in jobs.FINAL_STATES:
                self.worker.cancel(key, self.profile, item.job_id)


class LTX_OT_render_animation(ServerOptions, bpy.types.Operator):
    """Cut the scene range into model-sized shots and render them in a queue (resumable)"""

    bl_idname = "ltx_render.render_animation"
    bl_label = "Render Animation"

    max_frames: IntProperty(name="Frames per shot", default=121, min=9, description="8k+1, the model's limit")
    overlap: IntProperty(name="Overlap", default=8, min=0, description="Frames shared by neighbouring shots")

    def execute(self, context):
        return self.invoke(context, None)

    def invoke(self, context, event):
        scene = context.scene
        try:
            server_most = profile_limits(scene.ltx_render.profile).get("max_frames") or self.max_frames
            max_frames, _ = snap_frames(min(self.max_frames, server_most))
            plans = plan_shots(scene.frame_start, scene.frame_end, max_frames, self.overlap)
            profile = self.profile_for(context)(scene.ltx_render.profile)
            runner = AnimationRender(scene, profile, plans)
        except USER_ERRORS as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        if not runner.pending:
            self.report({"INFO"}, f"all {len(plans)} shots are already rendered or on the server")
            return {"CANCELLED"}
        return self.run(context, runner, records.run_blocking)



CLASSES = (LTX_OT_render_animation,)
