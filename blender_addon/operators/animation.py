"""Render Animation: a whole range as continuous takes (core/animation.py plans it, the runner in
client/animation_runner.py renders it on the server(s)). This module is the Blender side: it exports
each window's bundle on the main thread, a little per tick, while the servers render the windows
already exported, and puts each shot's assembled take into the sequencer at the shot's first frame.

The job file (animation.json) sits in the output folder (//renders/<scene>/animation_<range>/ for
the panel, --out for the command line): pressing the button again, or rerunning the command, picks
the job up where it stopped.
"""

from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import BoolProperty, FloatProperty, IntProperty, StringProperty

from .. import sequencer
from ..client.animation_runner import AnimationRunner, take_dir, window_dir
from ..client.profiles import ServerProfile
from ..core import animation as an
from ..core.preview import PREVIEW
from ..core.takes import safe_name
from ..shot_bundle import read_shot, write_shot
from ..ui.preferences import profile_limits
from ..ui.properties import render_settings_for
from . import records
from .modal import USER_ERRORS, ServerOptions
from .shot import export_arguments


class AnimationRender:
    """A runner for modal.py (scene_name, keys, tick, cancel, outcome) and for the command line."""

    def __init__(self, scene: bpy.types.Scene, profiles: list[ServerProfile], ranges: list[tuple[int, int]],
                 job_dir: str | Path, *, max_frames: int = 121, overlap: int = an.DEFAULT_OVERLAP,
                 strength: float = an.DEFAULT_CONTINUITY_STRENGTH, markers: list[int] = (),
                 image_sequence: bool = False, progress=None, import_strips: bool = True, quality: str = "final"):
        self.scene_name, self.job_dir, self.import_strips = scene.name, Path(job_dir), import_strips
        if not scene.ltx_render.prompt.strip():  # fail before a long export, not after it
            raise ValueError("the prompt is empty; describe the shot (subject, action, look, sound)")
        job = an.load_job(self.job_dir)
        effective = render_settings_for(scene, max_frames, quality)  # ValueError: what to change, before work
        size = (effective.width, effective.height)
        if job is not None and not an.same_request(job, ranges, max_frames, overlap, quality, size):
            at = f" at {job.size[0]}x{job.size[1]}" if job.size else ""
            raise ValueError(f"{self.job_dir} holds another animation (frames {job.ranges}, {job.max_frames} per "
                             f"window, overlap {job.overlap}, {job.quality}{at}); use another output folder, or "
                             "delete it to start afresh")
        self.job = job or an.plan_animation(bpy.data.filepath, scene.name, ranges, max_frames=max_frames,
                                            overlap=overlap, strength=strength, markers=list(markers),
                                            quality=quality, size=size,
                                            display_size=effective.final_size if quality == PREVIEW else ())
        an.save_job(self.job, self.job_dir)
        self.resumed = job is not None
        self._latest: dict | None = None  # the runner's last event (its threads must not touch bpy)
        self._progress = progress or (lambda event: None)
        self.runner = AnimationRunner(self.job, self.job_dir, profiles, progress=self._on_event,
                                      client_info=records.client_info(), image_sequence=image_sequence)
        self._queue = self._windows_to_export()
        self._export = None  # (shot, index, generator) being exported
        self.keys: list[str] = []  # no per-window records in the .blend: the job file holds them
        self.cancelled = False
        self.runner.start()

    @property
    def scene(self) -> bpy.types.Scene:
        return bpy.data.scenes[self.scene_name]

    def _on_event(self, event: dict) -> None:
        self._latest = event
        self._progress(event)

    def _show_progress(self) -> None:
        """The panel's status line from the last event: shot i of n, window j of m, frames done, ETA."""
        e = self._latest
        if e is None:
            return
        settings = self.scene.ltx_render
        where = f"shot {e['shot_index']}/{e['shots']}" + (f", window {e['window']}/{e['windows']}" if e["window"] else "")
        eta = f", ETA {e['eta_s']:.0f} s" if e["eta_s"] is not None else ""
        settings.status_text = f"{where}: {e.get('stage') or e['event']} ({e['frames_done']}/{e['frames_total']} " \
                               f"frames{eta})"
        settings.progress = e["frames_done"] / max(1, e["frames_total"])

    def _windows_to_export(self) -> list[tuple[an.ShotJob, int]]:
        """Windows still to render, first windows of every shot first (so every server starts early);
        those already exported (or done) are handed to the runner at once."""
        pending = []
        for shot in self.job.shots:
            for index, window in enumerate(shot.windows):
                if window.state == an.DONE or (window_dir(self.job_dir, shot, index) / "bundle" / "shot.json").is_file():
                    self.runner.mark_exported(shot, index)
                elif not shot.done:
                    pending.append((index, self.job.shots.index(shot), shot))
        return [(shot, index) for index, _, shot in sorted(pending, key=lambda p: (p[0], p[1]))]

    def tick(self, budget_s: float = 0.05) -> bool:
        """Export a little; True once every shot is assembled (and in the sequencer) or given up."""
        import time

        t0 = time.monotonic()
        while not self.cancelled and (self._export is not None or self._queue) and time.monotonic() - t0 < budget_s:
            if self._export is None:
                shot, index = self._queue.pop(0)
                window = shot.windows[index]
                # The job's quality, not the panel's now: the windows of a resumable job must share one
                # size (each continues from the previous one's tail).
                args = export_arguments(self.scene, window.frame_start, window.frame_end,
                                        f"{shot.name}_w{index + 1:02d}", quality=self.job.quality)
                from ..gather.export import iter_export_shot

                bundle = window_dir(self.job_dir, shot, index) / "bundle"
                self._export = (shot, index, iter_export_shot(self.scene, bundle, **args))
            shot, index, steps = self._export
            try:
                next(steps)
            except StopIteration:
                self._exported(shot, index)
                self._export = None
        self._show_progress()
        if self.runner.running():
            return False
        if self.import_strips and not self.cancelled:
            for shot in self.job.shots:
                if shot.done:
                    sequencer.import_take(self.scene, take_dir(self.job_dir, shot), shot.frame_start, name=shot.name,
                                          display_size=self._display_size())
        return True

    def _display_size(self) -> tuple[int, int] | None:
        """A Preview take's strip covers what its Final take would (as Render Preview's does): the size
        recorded when the job was planned, whatever the panel says now."""
        return tuple(self.job.display_size) if self.job.display_size else None

    def _exported(self, shot: an.ShotJob, index: int) -> None:
        """A finished bundle: ask the server for the tail the next window continues from."""
        if index + 1 < len(shot.windows):
            bundle = window_dir(self.job_dir, shot, index) / "bundle"
            doc = read_shot(bundle)
            doc.tail_frames = shot.windows[index + 1].condition_frames
            write_shot(bundle, doc)
        self.runner.mark_exported(shot, index)

    def cancel(self) -> None:
        """Esc / Cancel: stop exporting and following; what the servers run goes on, and a rerun
        re-attaches to it."""
        self.cancelled = True
        if self._export is not None:
            self._export[2].close()  # the export's cleanup: the user's render settings come back
            self._export = None
        self.runner.stop()

    def outcome(self) -> tuple[str, str]:
        """("done" | "failed" | "cancelled", what to tell the user)."""
        done = sum(s.done for s in self.job.shots)
        if self.runner.complete:
            return "done", (f"{done} take(s) assembled, {self.job.frames_total} frames, in the sequencer"
                            if self.import_strips else f"{done} take(s) assembled")
        if self.cancelled:
            return "cancelled", f"stopped: {done} of {len(self.job.shots)} shots done; press again to resume"
        failed = [f"{s.name}: {s.reason}" for s in self.job.shots if s.state == an.FAILED]
        return "failed", "; ".join(failed) or "stopped"


def animation_dir(scene: bpy.types.Scene, ranges: list[tuple[int, int]], quality: str = "final") -> Path:
    """Where the panel's Render Animation keeps its job: //renders/<scene>/animation_<first>-<last>
    (+ _preview: a Preview and a Final of the same range are two jobs, each resumable)."""
    if not bpy.data.filepath:
        raise RuntimeError("save the .blend first: takes are written next to it (//renders/<scene>/)")
    span = f"{ranges[0][0]:04d}-{ranges[-1][1]:04d}" + ("_preview" if quality == PREVIEW else "")
    return Path(bpy.path.abspath("//renders")) / safe_name(scene.name) / f"animation_{span}"


class LTX_OT_render_animation(ServerOptions, bpy.types.Operator):
    """Render the scene range (or Frames) as continuous takes: windows that continue from one another,
    assembled into one video and soundtrack per shot (resumable: press again after a crash)"""

    bl_idname = "ltx_render.render_animation"
    bl_label = "Render Animation"

    frames: StringProperty(name="Frames", description="Ranges as render farms write them, e.g. '1-240' or "
                           "'1-30, 47-327' ('' = the scene's range)")
    max_frames: IntProperty(name="Frames per window", default=121, min=9, description="8k+1, the model's limit")
    overlap: IntProperty(name="Overlap", default=an.DEFAULT_OVERLAP, min=9,
                         description="Frames each window re-renders from the previous one (8m+1)")
    strength: FloatProperty(name="Continuity", default=an.DEFAULT_CONTINUITY_STRENGTH, min=0.0, max=1.0,
                            description="How strongly a window holds to the previous window's last frames")
    markers: BoolProperty(name="Cut at markers", description="Start a new shot at every timeline marker")
    image_sequence: BoolProperty(name="Image sequence", description="Also write the take as NNNNNN.png frames")

    def execute(self, context):
        return self.invoke(context, None)

    def invoke(self, context, event):
        scene = context.scene
        try:
            ranges = an.parse_frame_ranges(self.frames) if self.frames.strip() else [(scene.frame_start,
                                                                                      scene.frame_end)]
            server_most = profile_limits(scene.ltx_render.profile).get("max_frames") or self.max_frames
            max_frames = min(self.max_frames, server_most)
            max_frames -= (max_frames - 1) % 8
            profile = self.profile_for(context)(scene.ltx_render.profile)
            markers = [m.frame for m in scene.timeline_markers] if self.markers else []
            quality = scene.ltx_render.quality  # the panel's Quality, as Render Preview
            runner = AnimationRender(scene, [profile], ranges, animation_dir(scene, ranges, quality),
                                     max_frames=max_frames, overlap=self.overlap, strength=self.strength,
                                     markers=markers, image_sequence=self.image_sequence, quality=quality)
        except USER_ERRORS as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        if runner.runner.complete:
            self.report({"INFO"}, f"all {len(runner.job.shots)} shots are already assembled")
            return {"CANCELLED"}
        return self.run(context, runner, records.run_blocking)


CLASSES = (LTX_OT_render_animation,)
