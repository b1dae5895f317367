"""Many shots at once: Resume (re-attach to the jobs recorded in the .blend after a restart)
and Render Animation (a long range cut by plan_shots into model-sized shots, exported one
at a time on the main thread while the server renders the previous ones)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import bpy

from ..client import worker as wk
from ..client.profiles import ServerProfile
from ..core import jobs
from ..core.planning import ShotPlan
from ..core.takes import BUNDLE_DIR
from . import session as ss

ProfileFor = Callable[[str], ServerProfile]  # record.profile name -> profile


def resume_jobs(scene: bpy.types.Scene, profile_for: ProfileFor, worker: wk.RenderWorker | None = None) -> list[str]:
    """Re-attach every unfinished record of the scene; returns their request ids.

    - on the server (queued/running/encoding/fetching): watch, then fetch what is missing;
    - submitting (Blender stopped mid-upload): upload again with the same request_id, which
      the server deduplicates, when the export had finished (shot.json present);
    - exporting: cannot be resumed (the export lived in memory): marked failed.
    """
    worker = worker or ss.get_worker()
    keys = []
    for item in scene.ltx_render.jobs:
        take = Path(bpy.path.abspath(item.take_dir))
        if item.state in (jobs.DONE, jobs.FAILED, jobs.CANCELLED) or ss.LIVE.get(item.request_id):
            continue
        if item.state == jobs.EXPORTING:
            item.state, item.message = jobs.FAILED, "Blender stopped during the export; render the shot again"
            item.progress_text = f"Failed: {item.message}"
            continue
        profile = profile_for(item.profile)
        if item.job_id:
            worker.reattach(item.request_id, profile, item.job_id, take)
        elif (take / BUNDLE_DIR / "shot.json").is_file():
            # The bundle as exported: same manifest, so the server deduplicates a finished upload.
            worker.run_shot(item.request_id, profile, take / BUNDLE_DIR, take, client_info=ss.client_info())
        else:
            item.state, item.message = jobs.FAILED, "the export of this shot is incomplete; render it again"
            continue
        item.message = ""
        item.progress_text = "Re-attaching"
        keys.append(item.request_id)
    return keys


class JobsWatch:
    """Follows a set of request ids until all are final or detached (like ShotRender.tick)."""

    def __init__(self, scene: bpy.types.Scene, keys: list[str], profile_for: ProfileFor,
                 worker: wk.RenderWorker | None = None):
        self.scene_name, self.keys, self.profile_for = scene.name, list(keys), profile_for
        self.worker = worker or ss.get_worker()

    def tick(self, budget_s: float = 0.05) -> bool:
        ss.dispatch_events(self.worker)
        scene = bpy.data.scenes[self.scene_name]
        for key in self.keys:
            item = ss.find_job(scene, key)
            if item is not None and item.state not in jobs.FINAL_STATES and self.worker.busy(key):
                return False
        ss.dispatch_events(self.worker)
        return True

    def cancel(self) -> None:
        scene = bpy.data.scenes[self.scene_name]
        for key in self.keys:
            item = ss.find_job(scene, key)
            if item is not None and item.job_id and item.state not in jobs.FINAL_STATES:
                self.worker.cancel(key, self.profile_for(item.profile), item.job_id)


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
        self.worker = worker or ss.get_worker()
        have = shots_done(scene)
        self.pending = [p for p in plans if (p.frame_start, p.frame_end) not in have]
        self.skipped = len(plans) - len(self.pending)
        self.current: ss.ShotRender | None = None
        self.keys: list[str] = []
        self.cancelled = False

    def tick(self, budget_s: float = 0.05) -> bool:
        scene = bpy.data.scenes[self.scene_name]
        if self.current is not None and self.current.exporting:
            self.current.tick(budget_s)
        elif self.pending and not self.cancelled:
            plan = self.pending.pop(0)
            self.current = ss.ShotRender(scene, self.profile, plan.frame_start, plan.frame_end, self.worker,
                                         trim_start=plan.trim_start, trim_end=plan.trim_end)
            self.keys.append(self.current.request_id)
        ss.dispatch_events(self.worker)
        if self.pending and not self.cancelled:
            return False
        if self.current is not None and self.current.exporting:
            return False
        if not JobsWatch(scene, self.keys, lambda _name: self.profile, self.worker).tick():
            return False
        for key in self.keys:
            ss.LIVE.pop(key, None)
        return True

    def cancel(self) -> None:
        self.cancelled = True
        self.pending.clear()
        scene = bpy.data.scenes[self.scene_name]
        for key in self.keys:
            live = ss.LIVE.get(key)
            item = ss.find_job(scene, key)
            if live is not None:
                live.cancel()
            elif item is not None and item.job_id and item.state not in jobs.FINAL_STATES:
                self.worker.cancel(key, self.profile, item.job_id)
