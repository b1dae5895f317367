"""One shot from the scene to the sequencer (Render Preview): export (iter_export_shot, a frame at
a time on the main thread) -> worker thread (submit the bundle as exported, watch, fetch) ->
import strips + take.json.
"""

from __future__ import annotations

import json
import time

import bpy

from ..client import worker as wk
from ..client.limits import camera_loras_for, canvas_kind_for, canvas_size_for, frames_problem
from ..client.profiles import ServerProfile
from ..core import jobs
from ..core.planning import snap_frames
from ..core.preview import PREVIEW
from ..core.takes import BUNDLE_DIR, next_take_dir, shot_name
from ..ui.preferences import profile_limits
from ..ui.properties import render_settings_for, shot_range
from . import records
from .modal import USER_ERRORS, ServerOptions


def export_arguments(scene: bpy.types.Scene, frame_start: int, frame_end: int, shot: str,
                     camera: bool = True, quality: str = "") -> dict:
    """iter_export_shot keyword arguments from the panel settings. ValueError when the camera
    mode lacks its LoRA name; camera=False (canvas preview) exports without camera conditioning,
    but at the size a render would use (snapped for the trajectory LoRA too in Trajectory mode).
    The control canvas is the size the control LoRA reads on the server (its
    reference_downscale_factor, halved again in two-stage mode), else 1 / the panel's Reference
    downscale."""
    s = scene.ltx_render
    control_lora = s.control_lora.strip()
    effective = render_settings_for(scene, frame_end - frame_start + 1, quality)
    limits, width, height = effective.limits, effective.width, effective.height  # one stage's for a Preview
    names = [t.target_name for t in s.targets if t.target_name]
    armatures = [t.target_name for t in s.armatures if t.target_name]
    camera_mode = s.camera_mode if camera else "off"
    preset_lora, trajectory_lora = camera_loras_for(camera_mode, s.camera_preset.strip(),
                                                    s.camera_trajectory.strip(), limits)
    # strength=1.0: the export records the (keyframed) property per frame in per_frame.
    return dict(frame_start=frame_start, frame_end=frame_end, targets=names, armatures=armatures,
                width=width, height=height, kind=canvas_kind_for(control_lora, limits, s.canvas_kind),
                canvas_options=canvas_options(s),
                canvas_size=canvas_size_for(control_lora, limits, width, height, s.reference_downscale_factor),
                prompt=s.prompt, negative_prompt=s.negative_prompt, seed=s.seed, strength=1.0,
                background_strength=s.background_strength if s.use_background_strength else None,
                camera_mode=camera_mode, preset_lora=preset_lora, trajectory_lora=trajectory_lora,
                control_lora=control_lora, audio=s.audio, name=shot, steps=effective.steps,
                stages=effective.stages)


def canvas_options(settings) -> dict:
    """The panel's canvas choices as gather.export's canvas_options (recorded in the bundle)."""
    return {"depth_scope": settings.depth_scope, "hands": settings.pose_hands, "face": settings.pose_face,
            "playblast_colour": settings.playblast_colour}


class ShotRender:
    """Render one shot. tick() returns True once its record is final (done/failed/cancelled)
    or detached (lost connection; the job goes on on the server and Resume picks it up)."""

    def __init__(self, scene: bpy.types.Scene, profile: ServerProfile, frame_start: int, frame_end: int,
                 worker: wk.RenderWorker | None = None, trim_start: int = 0, trim_end: int = 0):
        from ..gather.export import iter_export_shot  # bpy-heavy; loaded when first used

        n = frame_end - frame_start + 1
        snapped, note = snap_frames(n)
        if snapped != n:
            raise ValueError(note)
        problem = frames_problem(n, profile_limits(scene.ltx_render.profile))
        if problem:
            raise ValueError(problem)
        if not scene.ltx_render.prompt.strip():  # fail before a long export, not after it
            raise ValueError("the prompt is empty; describe the shot (subject, action, look, sound)")
        shot = shot_name(frame_start, frame_end)
        arguments = export_arguments(scene, frame_start, frame_end, shot)  # raises before any record exists
        self.scene_name = scene.name
        self.profile = profile
        self.worker = worker or records.get_worker()
        self.shot = shot
        self.take_dir = next_take_dir(records.renders_root(), scene.name, self.shot)
        self.bundle_dir = self.take_dir / BUNDLE_DIR
        self.request_id = jobs.new_request_id()
        record = jobs.JobRecord(request_id=self.request_id, shot=self.shot,
                                take_dir=bpy.path.relpath(str(self.take_dir)), profile=profile.name,
                                frame_start=frame_start, frame_end=frame_end, created_s=time.time(),
                                trim_start=trim_start, trim_end=trim_end)
        item = scene.ltx_render.jobs.add()
        item.from_record(record)
        snapshot = records.settings_snapshot(scene, frame_start, frame_end)
        effective = render_settings_for(scene, n)
        if effective.quality == PREVIEW:  # the strip covers what the Final take would (sequencer.import_take)
            snapshot["display_size"] = list(effective.final_size)
        item.settings_json = json.dumps(snapshot)
        item.progress_text = jobs.progress_text(jobs.EXPORTING)
        self._steps = iter_export_shot(scene, self.bundle_dir, **arguments)
        self.exporting = True
        self.detached = False
        records.LIVE[self.request_id] = self

    @property
    def keys(self) -> list[str]:
        return [self.request_id]

    @property
    def scene(self) -> bpy.types.Scene:
        return bpy.data.scenes[self.scene_name]

    @property
    def record(self):
        return records.find_job(self.scene, self.request_id)

    @property
    def state(self) -> str:
        return self.record.state

    def tick(self, budget_s: float = 0.05) -> bool:
        if self.exporting:
            self._export_some(budget_s)
        else:
            records.dispatch_events(self.worker)
        item = self.record
        finished = item.state in jobs.FINAL_STATES
        if not finished and not self.exporting and not self.worker.busy(self.request_id):
            records.dispatch_events(self.worker)  # the thread may have ended right after its last event
            finished = item.state in jobs.FINAL_STATES
            self.detached = not finished
        if finished or self.detached:
            records.LIVE.pop(self.request_id, None)
            return True
        return False

    def _export_some(self, budget_s: float) -> None:
        item, t0 = self.record, time.monotonic()
        try:
            while True:
                done, total, stage = next(self._steps)
                item.progress = 0.1 * done / total  # export is the first ~10 % of the wait
                item.progress_text = jobs.progress_text(jobs.EXPORTING, step=done, total_steps=total)
                if time.monotonic() - t0 >= budget_s:
                    break
        except StopIteration:
            self.exporting = False
            item.state = jobs.SUBMITTING
            item.progress_text = jobs.progress_text(jobs.SUBMITTING)
            self.worker.run_shot(self.request_id, self.profile, self.bundle_dir, self.take_dir,
                                 client_info=records.client_info())
        except Exception as exc:  # export errors are the user's to fix (targets, camera...): show them
            self.exporting = False
            item.state, item.message = jobs.FAILED, f"export failed: {exc}"
            item.progress_text = f"Failed: {item.message}"
        records.set_status(self.scene, item)

    def cancel(self) -> None:
        """Esc / Cancel: stop the export here, or the job on the server."""
        item = self.record
        if self.exporting:
            self._steps.close()  # runs the export's cleanup: the user's render settings come back
            self.exporting = False
            item.state, item.progress_text = jobs.CANCELLED, jobs.progress_text(jobs.CANCELLED)
            records.set_status(self.scene, item)
            return
        self.worker.cancel(self.request_id, self.profile, item.job_id)


class LTX_OT_render_preview(ServerOptions, bpy.types.Operator):
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
            runner = ShotRender(scene, profile, start, start + n - 1)
        except USER_ERRORS as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return self.run(context, runner, records.run_blocking)



CLASSES = (LTX_OT_render_preview,)
