"""Render Preview, Render Animation, Resume and Cancel.

With a window they are modal: a timer advances the export in small steps on the main thread
and applies worker events, so Blender stays responsive; Esc cancels. Without a window
(blender -b, bpy as a module) the same operators run to completion in execute().
"""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, FloatProperty, IntProperty, StringProperty

from ..client.profiles import ServerProfile, profile_problems
from ..core import jobs
from ..core.planning import plan_shots, snap_frames
from ..ui.preferences import find_profile, profile_limits
from ..ui.properties import shot_range
from . import queue as qu
from . import session as ss

_USER_ERRORS = (ValueError, LookupError, RuntimeError, OSError)


class _ServerOverride:
    """Operator options for scripts and the headless CLI: a server given directly instead of a
    preferences profile. SKIP_SAVE keeps them (and the token path) out of the .blend."""

    server: StringProperty(name="Server", description="host:port (overrides the profile)", options={"SKIP_SAVE"})
    use_tls: BoolProperty(name="TLS", options={"SKIP_SAVE"})
    ca_cert: StringProperty(name="CA certificate", subtype="FILE_PATH", options={"SKIP_SAVE"})
    token_file: StringProperty(name="Token file", subtype="FILE_PATH", options={"SKIP_SAVE"})
    timeout_s: FloatProperty(name="Timeout", default=3600.0, min=1.0, options={"SKIP_SAVE"},
                             description="Headless only: give up (and cancel) after this many seconds")

    def profile_for(self, context):
        """name -> ServerProfile: the override when given, else the named preferences profile."""
        if self.server:
            override = ServerProfile(name=f"{self.server}", address=self.server, use_tls=self.use_tls,
                                     ca_cert_path=self.ca_cert, token_file=self.token_file)
            problems = profile_problems(override)
            if problems:
                raise ValueError("; ".join(problems))
            return lambda _name: override
        return lambda name: find_profile(name or context.scene.ltx_render.profile, context)

    def run(self, context, runner, blocking):
        """Headless: block until done. With a window: go modal."""
        if headless(context):
            try:
                blocking(runner, self.timeout_s)
            except TimeoutError as exc:
                self.report({"ERROR"}, str(exc))
                return {"CANCELLED"}
            return self.finish(context, runner)
        self._runner = runner
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.modal_handler_add(self)
        _settings(runner).busy = True
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        result = modal_step(self._runner, event.type)
        for area in context.screen.areas if context.screen else ():
            if area.type in ("VIEW_3D", "SEQUENCE_EDITOR", "STATUSBAR"):
                area.tag_redraw()
        if result & {"FINISHED", "CANCELLED"}:
            self._remove_timer(context)
            return self.finish(context, self._runner)
        return result

    def cancel(self, context):
        """Blender ends the modal operator (file load, window closed, quit): stop the timer and
        clear busy. The jobs go on on the server; their records re-attach (Resume)."""
        self._remove_timer(context)
        runner = getattr(self, "_runner", None)
        if runner is None:
            return
        for key in _keys(runner):
            ss.LIVE.pop(key, None)
        settings = _settings(runner)
        if settings is not None:
            settings.busy = False

    def _remove_timer(self, context) -> None:
        timer = getattr(self, "_timer", None)
        if timer is not None:
            context.window_manager.event_timer_remove(timer)
            self._timer = None

    def finish(self, context, runner):
        settings = _settings(runner)  # the runner's scene: the user may have switched scenes meanwhile
        if settings is None:
            self.report({"WARNING"}, f"scene {runner.scene_name!r} was deleted during the render")
            return {"CANCELLED"}
        settings.busy = False
        keys = _keys(runner)
        records = [j for j in settings.jobs if j.request_id in keys]
        failed = [j for j in records if j.state == jobs.FAILED]
        if failed:
            self.report({"ERROR"}, f"{failed[0].shot}: {failed[0].message}")
            return {"CANCELLED"}
        if records and all(j.state == jobs.DONE for j in records):
            self.report({"INFO"}, settings.status_text)
            return {"FINISHED"}
        self.report({"WARNING"}, settings.status_text or "stopped")
        return {"CANCELLED"}


def _settings(runner):
    """scene.ltx_render of the runner's scene (None once that scene was deleted)."""
    scene = bpy.data.scenes.get(runner.scene_name)
    return scene.ltx_render if scene is not None else None


def headless(context) -> bool:
    """No event loop: `blender -b` and bpy as a module (which still has a window object)."""
    return bpy.app.background or context.window is None


def _keys(runner) -> list[str]:
    return [runner.request_id] if isinstance(runner, ss.ShotRender) else list(runner.keys)


def modal_step(runner, event_type: str, budget_s: float = 0.05) -> set[str]:
    """One modal event: Esc cancels (the runner then ends when the server confirms), a timer
    advances the work; everything else passes through to Blender."""
    if event_type == "ESC":
        runner.cancel()
        return {"RUNNING_MODAL"}
    if event_type == "TIMER":
        if runner.tick(budget_s):
            keys = _keys(runner)
            scene = bpy.data.scenes[runner.scene_name]
            done = [ss.find_job(scene, k) for k in keys]
            return {"FINISHED"} if done and all(j is not None and j.state == jobs.DONE for j in done) \
                else {"CANCELLED"}
        return {"RUNNING_MODAL"}
    return {"PASS_THROUGH"}


class LTX_OT_render_preview(_ServerOverride, bpy.types.Operator):
    """Render the shot (preview range, or scene range) on the server; the take lands in the sequencer"""

    bl_idname = "ltx_render.render_preview"
    bl_label = "Render Preview"

    def execute(self, context):
        return self.invoke(context, None)

    def invoke(self, context, event):
        scene = context.scene
        try:
            start, end = shot_range(scene)
            n, note = snap_frames(end - start + 1)
            if note:
                self.report({"WARNING"}, note)
            profile = self.profile_for(context)(scene.ltx_render.profile)
            runner = ss.ShotRender(scene, profile, start, start + n - 1)
        except _USER_ERRORS as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return self.run(context, runner, ss.run_blocking)


class LTX_OT_render_animation(_ServerOverride, bpy.types.Operator):
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
            runner = qu.AnimationRender(scene, profile, plans)
        except _USER_ERRORS as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        if not runner.pending:
            self.report({"INFO"}, f"all {len(plans)} shots are already rendered or on the server")
            return {"CANCELLED"}
        return self.run(context, runner, ss.run_blocking)


class LTX_OT_resume_jobs(_ServerOverride, bpy.types.Operator):
    """Re-attach to the jobs recorded in this .blend and fetch the finished ones"""

    bl_idname = "ltx_render.resume_jobs"
    bl_label = "Resume"

    def execute(self, context):
        return self.invoke(context, None)

    def invoke(self, context, event):
        scene = context.scene
        profile_for = self.profile_for(context)
        try:
            keys = qu.resume_jobs(scene, profile_for)
        except _USER_ERRORS as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        if not keys:
            self.report({"INFO"}, "no unfinished jobs in this scene")
            return {"CANCELLED"}
        runner = qu.JobsWatch(scene, keys, profile_for)
        return self.run(context, runner, ss.run_blocking)


class LTX_OT_cancel(bpy.types.Operator):
    """Cancel the running renders of this scene (also on the server)"""

    bl_idname = "ltx_render.cancel"
    bl_label = "Cancel"

    def execute(self, context):
        scene = context.scene
        count = 0
        for item in scene.ltx_render.jobs:
            if item.state in jobs.FINAL_STATES:
                continue
            live = ss.LIVE.get(item.request_id)
            if live is not None:
                live.cancel()
            elif item.job_id:
                try:
                    ss.get_worker().cancel(item.request_id, find_profile(item.profile, context), item.job_id)
                except LookupError as exc:
                    self.report({"ERROR"}, str(exc))
                    return {"CANCELLED"}
            count += 1
        self.report({"INFO"}, f"cancelling {count} job(s)" if count else "nothing to cancel")
        return {"FINISHED"}


CLASSES = (LTX_OT_render_preview, LTX_OT_render_animation, LTX_OT_resume_jobs, LTX_OT_cancel)
