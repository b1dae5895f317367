"""Resume (re-attach to the jobs recorded in the .blend, e.g. after a restart) and Cancel."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import bpy

from ..client import worker as wk
from ..client.profiles import ServerProfile
from ..core import jobs
from ..core.takes import BUNDLE_DIR
from ..ui.preferences import find_profile
from . import records
from .modal import USER_ERRORS, ServerOptions

ProfileFor = Callable[[str], ServerProfile]  # record.profile name -> profile


def resume_jobs(scene: bpy.types.Scene, profile_for: ProfileFor, worker: wk.RenderWorker | None = None) -> list[str]:
    """Re-attach every unfinished record of the scene; returns their request ids.

    - on the server (queued/running/encoding/fetching): watch, then fetch what is missing;
    - submitting (Blender stopped mid-upload): upload again with the same request_id, which
      the server deduplicates, when the export had finished (shot.json present);
    - exporting: cannot be resumed (the export lived in memory): marked failed.
    """
    worker = worker or records.get_worker()
    keys = []
    for item in scene.ltx_render.jobs:
        take = Path(bpy.path.abspath(item.take_dir))
        if item.state in (jobs.DONE, jobs.FAILED, jobs.CANCELLED) or records.LIVE.get(item.request_id):
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
            worker.run_shot(item.request_id, profile, take / BUNDLE_DIR, take, client_info=records.client_info())
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
        self.worker = worker or records.get_worker()

    def tick(self, budget_s: float = 0.05) -> bool:
        records.dispatch_events(self.worker)
        scene = bpy.data.scenes[self.scene_name]
        for key in self.keys:
            item = records.find_job(scene, key)
            if item is not None and item.state not in jobs.FINAL_STATES and self.worker.busy(key):
                return False
        records.dispatch_events(self.worker)
        return True

    def cancel(self) -> None:
        scene = bpy.data.scenes[self.scene_name]
        for key in self.keys:
            item = records.find_job(scene, key)
            if item is not None and item.job_id and item.state not in jobs.FINAL_STATES:
                self.worker.cancel(key, self.profile_for(item.profile), item.job_id)


class LTX_OT_resume_jobs(ServerOptions, bpy.types.Operator):
    """Re-attach to the jobs recorded in this .blend and fetch the finished ones"""

    bl_idname = "ltx_render.resume_jobs"
    bl_label = "Resume"

    def execute(self, context):
        return self.invoke(context, None)

    def invoke(self, context, event):
        scene = context.scene
        profile_for = self.profile_for(context)
        try:
            keys = resume_jobs(scene, profile_for)
        except USER_ERRORS as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        if not keys:
            self.report({"INFO"}, "no unfinished jobs in this scene")
            return {"CANCELLED"}
        runner = JobsWatch(scene, keys, profile_for)
        return self.run(context, runner, records.run_blocking)


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
            live = records.LIVE.get(item.request_id)
            if live is not None:
                live.cancel()
            elif item.job_id:
                try:
                    records.get_worker().cancel(item.request_id, find_profile(item.profile, context), item.job_id)
                except LookupError as exc:
                    self.report({"ERROR"}, str(exc))
                    return {"CANCELLED"}
            count += 1
        self.report({"INFO"}, f"cancelling {count} job(s)" if count else "nothing to cancel")
        return {"FINISHED"}



CLASSES = (LTX_OT_resume_jobs, LTX_OT_cancel)
