"""What every render operator shares: the server given as operator options (scripts, headless
CLI) or as a preferences profile, and the modal loop. With a window the operators are modal: a
timer advances the work in small steps on the main thread and applies worker events, so Blender
stays responsive; Esc cancels. Without a window (blender -b, bpy as a module) the same operators
run to completion in execute().

A runner (ShotRender, AnimationRender, JobsWatch) has .scene_name, .keys (request ids),
.tick(budget_s) -> done, and .cancel(); AnimationRender also .outcome() -> (state, message).
"""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, FloatProperty, StringProperty

from ..client.profiles import ServerProfile, profile_problems
from ..core import jobs
from ..ui.preferences import find_profile
from . import records

USER_ERRORS = (ValueError, LookupError, RuntimeError, OSError)


class ServerOptions:
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
        for key in list(runner.keys):
            records.LIVE.pop(key, None)
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
        if hasattr(runner, "outcome"):  # Render Animation: its job file, not per-shot records, knows
            state, message = runner.outcome()
            settings.status_text = message
            self.report({"INFO" if state == "done" else "ERROR" if state == "failed" else "WARNING"}, message)
            return {"FINISHED"} if state == "done" else {"CANCELLED"}
        keys = list(runner.keys)
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


def modal_step(runner, event_type: str, budget_s: float = 0.05) -> set[str]:
    """One modal event: Esc cancels (the runner then ends when the server confirms), a timer
    advances the work; everything else passes through to Blender."""
    if event_type == "ESC":
        runner.cancel()
        return {"RUNNING_MODAL"}
    if event_type == "TIMER":
        if runner.tick(budget_s):
            if hasattr(runner, "outcome"):
                return {"FINISHED"} if runner.outcome()[0] == "done" else {"CANCELLED"}
            keys = list(runner.keys)
            scene = bpy.data.scenes[runner.scene_name]
            done = [records.find_job(scene, k) for k in keys]
            return {"FINISHED"} if done and all(j is not None and j.state == jobs.DONE for j in done) \
                else {"CANCELLED"}
        return {"RUNNING_MODAL"}
    return {"PASS_THROUGH"}


