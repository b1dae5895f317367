"""One shot's way from the scene to the sequencer, advanced in small steps on Blender's main
thread: export (iter_export_shot, a frame at a time) -> worker thread (submit, watch, fetch)
-> import strips + take.json. A modal timer calls tick(); headless runs loop over it.

Job state lives in the .blend (scene.ltx_render.jobs), so the panel shows it and a restarted
Blender re-attaches. Worker events are applied to those records by dispatch_events(), the one
place that reads the worker's queue.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import bpy

from ..client import connection as conn
from ..client import worker as wk
from ..client.limits import camera_loras_for, canvas_size_for, frames_problem, snap_size_for
from ..client.profiles import ServerProfile
from ..core import jobs
from ..core.planning import snap_frames
from ..core.takes import BUNDLE_DIR, next_take_dir, shot_name, write_take_record
from ..ui import vse
from ..ui.preferences import addon_preferences, profile_limits, store_limits

_WORKER: wk.RenderWorker | None = None
LIVE: dict[str, ShotRender] = {}  # request_id -> running session (for Cancel and Esc)


def get_worker() -> wk.RenderWorker:
    global _WORKER
    if _WORKER is None:
        _WORKER = wk.RenderWorker()
    return _WORKER


def shutdown_worker() -> None:
    global _WORKER
    if _WORKER is not None:
        _WORKER.shutdown()
    _WORKER = None


def renders_root() -> Path:
    """//renders next to the .blend; takes need a saved file to live next to."""
    if not bpy.data.filepath:
        raise RuntimeError("save the .blend first: takes are written next to it (//renders/<scene>/<shot>/)")
    return Path(bpy.path.abspath("//renders"))


def client_info() -> str:
    return f"Blender {bpy.app.version_string} / ltx_neural_render"


def settings_snapshot(scene: bpy.types.Scene, frame_start: int, frame_end: int) -> dict:
    """The settings a take is made with (take.json; Redo take restores them). Targets are
    {"collection": name} or {"object": name}; armatures are object names."""
    s = scene.ltx_render
    targets = [{"collection": t.collection.name} if t.collection else {"object": t.object.name}
               for t in s.targets if t.collection or t.object]
    return {"prompt": s.prompt, "negative_prompt": s.negative_prompt, "seed": s.seed,
            "control_strength": s.control_strength, "background_strength": s.background_strength,
            "use_background_strength": s.use_background_strength, "camera_mode": s.camera_mode,
            "camera_preset": s.camera_preset, "camera_trajectory": s.camera_trajectory,
            "control_lora": s.control_lora, "reference_downscale_factor": s.reference_downscale_factor,
            "audio": s.audio,
            "width": s.width, "height": s.height, "frame_start": frame_start, "frame_end": frame_end,
            "targets": targets, "armatures": [t.object.name for t in s.armatures if t.object]}


def find_job(scene: bpy.types.Scene, request_id: str):
    return next((j for j in scene.ltx_render.jobs if j.request_id == request_id), None)


def _set_status(scene, item) -> None:
    settings = scene.ltx_render
    settings.status_text = f"{item.shot}: {item.progress_text}"
    settings.progress = item.progress


def finish_take(scene: bpy.types.Scene, item) -> None:
    """Downloaded take -> sequencer strips + take.json; the record becomes DONE."""
    take = Path(bpy.path.abspath(item.take_dir))
    settings = json.loads(item.settings_json or "{}")
    strips = vse.import_take(scene, take, item.frame_start, name=f"{item.shot} {take.name}",
                             audio=settings.get("audio", True), trim_start=item.trim_start, trim_end=item.trim_end)
    movie = strips[0]
    write_take_record(take, settings=settings, job_id=item.job_id, server=item.profile, shot=item.shot,
                      fps=movie.fps, frames=movie.frame_duration)
    item.state = jobs.DONE
    item.progress = 1.0
    item.message = item.progress_text = f"{take.name} in the sequencer at frame {item.frame_start}"


def apply_event(scene: bpy.types.Scene, item, event: wk.WorkerEvent) -> None:
    """Update one job record from a worker event (main thread only)."""
    if event.job_id:
        item.job_id = event.job_id
    if event.kind == wk.FETCHED:
        try:
            finish_take(scene, item)
        except (OSError, ValueError, RuntimeError) as exc:
            item.state, item.message = jobs.FAILED, f"import failed: {exc}"
            item.progress_text = jobs.progress_text(jobs.FAILED, message=item.message)
    elif event.kind in (wk.PROGRESS, wk.SUBMITTED):
        item.state, item.progress_text = event.state, event.text
        item.progress = max(item.progress, event.progress)
    elif event.kind == wk.FINISHED:
        item.state, item.message, item.progress_text = event.state, event.text, event.text
    elif event.kind == wk.ERROR:
        if item.job_id and event.reason in (conn.UNREACHABLE, conn.LOADING):
            # The job lives on on the server: keep the record resumable.
            item.message = f"{event.text} - the job continues on the server; press Resume"
        else:
            item.state, item.message = jobs.FAILED, event.text
        item.progress_text = item.message if item.state != jobs.FAILED else f"Failed: {event.text}"
    _set_status(scene, item)


def dispatch_events(worker: wk.RenderWorker | None = None, context=None) -> int:
    """Apply every pending worker event to its record (any scene); returns how many."""
    events = (worker or get_worker()).poll()
    for event in events:
        if event.kind == wk.CONNECTION:
            prefs = addon_preferences(context)
            if prefs is not None:
                prefs.connection_text, prefs.connection_ok = event.text, event.ok
            if event.ok:
                store_limits(event.key, event.limits, context)
            continue
        for scene in bpy.data.scenes:
            item = find_job(scene, event.key)
            if item is not None:
                apply_event(scene, item, event)
                break
    return len(events)


def export_arguments(scene: bpy.types.Scene, frame_start: int, frame_end: int, shot: str,
                     camera: bool = True) -> dict:
    """iter_export_shot keyword arguments from the panel settings. ValueError when the camera
    mode lacks its LoRA name; camera=False (canvas preview) exports without camera conditioning,
    but at the size a render would use (snapped for the trajectory LoRA too in Trajectory mode).
    The control canvas is the size the control LoRA reads on the server (its
    reference_downscale_factor, halved again in two-stage mode), else 1 / the panel's Reference
    downscale."""
    s = scene.ltx_render
    limits = profile_limits(s.profile)
    control_lora = s.control_lora.strip()
    width, height, _ = snap_size_for(s.width, s.height, limits, control_lora, s.camera_mode,
                                     s.camera_trajectory.strip())
    names = [t.target_name for t in s.targets if t.target_name]
    armatures = [t.target_name for t in s.armatures if t.target_name]
    camera_mode = s.camera_mode if camera else "off"
    preset_lora, trajectory_lora = camera_loras_for(camera_mode, s.camera_preset.strip(),
                                                    s.camera_trajectory.strip(), limits)
    # strength=1.0: the export records the (keyframed) property per frame in per_frame.
    return dict(frame_start=frame_start, frame_end=frame_end, targets=names, armatures=armatures,
                width=width, height=height,
                canvas_size=canvas_size_for(control_lora, limits, width, height, s.reference_downscale_factor),
                prompt=s.prompt, negative_prompt=s.negative_prompt, seed=s.seed, strength=1.0,
                background_strength=s.background_strength if s.use_background_strength else None,
                camera_mode=camera_mode, preset_lora=preset_lora, trajectory_lora=trajectory_lora,
                control_lora=control_lora, audio=s.audio, name=shot)


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
        self.worker = worker or get_worker()
        self.shot = shot
        self.take_dir = next_take_dir(renders_root(), scene.name, self.shot)
        self.bundle_dir = self.take_dir / BUNDLE_DIR
        self.request_id = jobs.new_request_id()
        record = jobs.JobRecord(request_id=self.request_id, shot=self.shot,
                                take_dir=bpy.path.relpath(str(self.take_dir)), profile=profile.name,
                                frame_start=frame_start, frame_end=frame_end, created_s=time.time(),
                                trim_start=trim_start, trim_end=trim_end)
        item = scene.ltx_render.jobs.add()
        item.from_record(record)
        item.settings_json = json.dumps(settings_snapshot(scene, frame_start, frame_end))
        item.progress_text = jobs.progress_text(jobs.EXPORTING)
        self._steps = iter_export_shot(scene, self.bundle_dir, **arguments)
        self.exporting = True
        self.detached = False
        LIVE[self.request_id] = self

    @property
    def scene(self) -> bpy.types.Scene:
        return bpy.data.scenes[self.scene_name]

    @property
    def record(self):
        return find_job(self.scene, self.request_id)

    @property
    def state(self) -> str:
        return self.record.state

    def tick(self, budget_s: float = 0.05) -> bool:
        if self.exporting:
            self._export_some(budget_s)
        else:
            dispatch_events(self.worker)
        item = self.record
        finished = item.state in jobs.FINAL_STATES
        if not finished and not self.exporting and not self.worker.busy(self.request_id):
            dispatch_events(self.worker)  # the thread may have ended right after its last event
            finished = item.state in jobs.FINAL_STATES
            self.detached = not finished
        if finished or self.detached:
            LIVE.pop(self.request_id, None)
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
                                 client_info=client_info())
        except Exception as exc:  # export errors are the user's to fix (targets, camera...): show them
            self.exporting = False
            item.state, item.message = jobs.FAILED, f"export failed: {exc}"
            item.progress_text = f"Failed: {item.message}"
        _set_status(self.scene, item)

    def cancel(self) -> None:
        """Esc / Cancel: stop the export here, or the job on the server."""
        item = self.record
        if self.exporting:
            self._steps.close()  # runs the export's cleanup: the user's render settings come back
            self.exporting = False
            item.state, item.progress_text = jobs.CANCELLED, jobs.progress_text(jobs.CANCELLED)
            _set_status(self.scene, item)
            return
        self.worker.cancel(self.request_id, self.profile, item.job_id)


def run_blocking(runner, timeout_s: float = 3600.0) -> str | None:
    """Drive a ShotRender, JobsWatch or AnimationRender to its end without a window (headless);
    returns the final state where the runner has one."""
    deadline = time.monotonic() + timeout_s
    while not runner.tick(budget_s=1.0):
        if time.monotonic() > deadline:
            runner.cancel()
            what = f"shot {runner.shot}" if hasattr(runner, "shot") else "jobs"
            raise TimeoutError(f"{what} did not finish in {timeout_s:.0f} s; cancelled")
        time.sleep(0.05)
    return getattr(runner, "state", None)

