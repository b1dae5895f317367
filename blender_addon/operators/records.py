"""The job records kept in the .blend (scene.ltx_render.jobs) and the one place that applies the
network worker's events to them, on Blender's main thread; the finished take's import into the
sequencer. Every render operator (one shot, animation, resume) shares this.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import bpy

from .. import sequencer
from ..client import connection as conn
from ..client import worker as wk
from ..core import jobs
from ..core.takes import write_take_record
from ..ui.preferences import addon_preferences, store_limits
from ..ui.properties import refresh_notes

_WORKER: wk.RenderWorker | None = None
LIVE: dict = {}  # request_id -> the running ShotRender (for Cancel and Esc)


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
            "canvas_kind": s.canvas_kind, "depth_scope": s.depth_scope, "pose_hands": s.pose_hands,
            "pose_face": s.pose_face, "playblast_colour": s.playblast_colour,
            "audio": s.audio, "quality": s.quality,
            "width": s.width, "height": s.height, "frame_start": frame_start, "frame_end": frame_end,
            "targets": targets, "armatures": [t.object.name for t in s.armatures if t.object]}


def find_job(scene: bpy.types.Scene, request_id: str):
    return next((j for j in scene.ltx_render.jobs if j.request_id == request_id), None)


def set_status(scene, item) -> None:
    settings = scene.ltx_render
    settings.status_text = f"{item.shot}: {item.progress_text}"
    settings.progress = item.progress


def finish_take(scene: bpy.types.Scene, item) -> None:
    """Downloaded take -> sequencer strips + take.json; the record becomes DONE."""
    take = Path(bpy.path.abspath(item.take_dir))
    settings = json.loads(item.settings_json or "{}")
    display = settings.get("display_size")  # a Preview: shown at the size its Final would have
    strips = sequencer.import_take(scene, take, item.frame_start, name=f"{item.shot} {take.name}",
                             audio=settings.get("audio", True), trim_start=item.trim_start, trim_end=item.trim_end,
                             display_size=tuple(display) if display else None)
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
        if event.limits:  # with the cost the server measured on this job: the estimate in the panel follows
            store_limits(item.profile, event.limits)
            refresh_notes(scene)
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
    set_status(scene, item)


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
                for scene in bpy.data.scenes:  # the size notes follow the new limits
                    refresh_notes(scene)
            continue
        for scene in bpy.data.scenes:
            item = find_job(scene, event.key)
            if item is not None:
                apply_event(scene, item, event)
                break
    return len(events)


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

