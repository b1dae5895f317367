"""Render a whole animation as continuous takes: the network side (no bpy).

The job (core/animation.py: shots cut into overlapping windows, saved in animation.json) is worked
by one thread per server profile; each thread takes whole shots (the windows of a shot stay on one
server, in order: each continues from the previous one's tail and the assembly needs them all).
Per window: wait for its bundle (exported on Blender's main thread, see `exported`), add the
previous window's tail as its frame condition, submit (the same request id after a crash, so the
server deduplicates), watch, fetch video, audio, sidecar and tail. Per shot, at the end: an
assembly job on the same server, fetched as the take (video.mp4, audio.wav, sidecar.json, and
frames/NNNNNN.png with image_sequence).

Everything that happened is in the job file after each step, so rerunning the same command skips
finished windows, re-attaches to submitted ones, and retries failed ones (MAX_ATTEMPTS, reason kept).
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path

from ..core import animation as an
from ..proto import render_pb2 as pb
from ..shot_bundle import Condition, frame_file, read_shot, write_shot
from . import connection as conn
from .profiles import ServerProfile
from .render_client import ARTIFACT_FILES, RenderClient

TAIL_FILE = "tail.zip"
REATTACH_S = 300.0  # how long a watch waits for a server that went away (a restart) before giving up
CONDITION_FOLDER = "continue"  # the bundle folder of a window's frame condition
TERMINAL = (pb.JOB_STATE_DONE, pb.JOB_STATE_FAILED, pb.JOB_STATE_CANCELLED)
ProgressFn = Callable[[dict], None]


def window_dir(job_dir: Path, shot: an.ShotJob, index: int) -> Path:
    return Path(job_dir) / shot.name / f"window_{index + 1:02d}"


def take_dir(job_dir: Path, shot: an.ShotJob) -> Path:
    return Path(job_dir) / shot.name / "take"


class AnimationRunner:
    """Works an AnimationJob to the end on `profiles` (one thread each). `exported(shot, window)`
    must be set (mark_exported) before a window is submitted: the bundles come from Blender's main
    thread. progress(event) gets one dict per event (what `--progress json` prints)."""

    def __init__(self, job: an.AnimationJob, job_dir: str | Path, profiles: list[ServerProfile], *,
                 progress: ProgressFn = lambda event: None, client_info: str = "",
                 image_sequence: bool = False, poll_s: float = 0.2):
        if not profiles:
            raise ValueError("no render server to render on")
        self.job, self.job_dir, self.profiles = job, Path(job_dir), list(profiles)
        self.progress, self.client_info, self.image_sequence, self.poll_s = progress, client_info, image_sequence, poll_s
        self._lock = threading.Lock()
        self._exported: dict[tuple[str, int], threading.Event] = {
            (s.name, i): threading.Event() for s in job.shots for i in range(len(s.windows))}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.errors: list[str] = []
        self._started = time.monotonic()
        self._window_seconds: list[float] = []

    # ------------------------------------------------------------ main thread
    def mark_exported(self, shot: an.ShotJob, index: int) -> None:
        self._exported[shot.name, index].set()

    def start(self) -> None:
        for k, profile in enumerate(self.profiles):
            shots = [s for i, s in enumerate(self.job.shots) if i % len(self.profiles) == k and not s.done]
            thread = threading.Thread(target=self._work, args=(profile, shots), name=f"animation {profile.name}",
                                      daemon=True)
            self._threads.append(thread)
            thread.start()

    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def stop(self) -> None:
        """Stop following (the jobs go on on the servers; a rerun re-attaches)."""
        self._stop.set()
        for event in self._exported.values():
            event.set()

    def join(self, timeout_s: float | None = None) -> None:
        for t in self._threads:
            t.join(timeout_s)

    @property
    def complete(self) -> bool:
        return all(s.done for s in self.job.shots)

    # ------------------------------------------------------------ per server
    def _work(self, profile: ServerProfile, shots: list[an.ShotJob]) -> None:
        for shot in shots:
            if self._stop.is_set():
                return
            try:
                with RenderClient(profile, timeout_s=30.0) as client:
                    self._shot(client, shot)
            except (conn.ConnectionProblem, OSError, ValueError, zipfile.BadZipFile) as exc:
                with self._lock:
                    shot.state, shot.reason = an.FAILED, str(exc)
                    self._save()
                self.errors.append(f"{shot.name}: {exc}")
                self._emit("shot_failed", shot, message=str(exc))

    def _shot(self, client: RenderClient, shot: an.ShotJob) -> None:
        for index, window in enumerate(shot.windows):
            while window.state != an.DONE:
                self._exported[shot.name, index].wait()
                if self._stop.is_set():
                    return
                if not self._window(client, shot, index):
                    if window.attempts >= an.MAX_ATTEMPTS:
                        raise ValueError(f"window {index + 1} failed {window.attempts} times; last: {window.reason}")
        self._assemble(client, shot)

    def _window(self, client: RenderClient, shot: an.ShotJob, index: int) -> bool:
        """One window to DONE (True) or to a failed attempt (False, reason kept)."""
        window = shot.windows[index]
        folder = window_dir(self.job_dir, shot, index)
        t0 = time.monotonic()
        if not window.job_id:
            if index and not (folder / "bundle" / CONDITION_FOLDER).is_dir():
                self._add_condition(shot, index)
            reply = client.submit_bundle(folder / "bundle", request_id=window.request_id, client_info=self.client_info)
            with self._lock:
                window.job_id, window.state, window.attempts = reply.job_id, an.SUBMITTED, window.attempts + 1
                self._save()
            self._emit("submitted", shot, index, job_id=reply.job_id)
        final = self._follow(client, shot, index, window.job_id)
        if final is None:
            return False
        if final.state != pb.JOB_STATE_DONE:
            with self._lock:  # a new request id: the server keeps the failed job under the old one
                window.state, window.reason = an.FAILED, final.message
                window.job_id, window.request_id = "", f"win-{uuid.uuid4().hex[:24]}"
                self._save()
            self._emit("window_failed", shot, index, message=final.message)
            return False
        for artifact in final.artifacts:
            name = TAIL_FILE if artifact.kind == pb.ARTIFACT_KIND_TAIL_ZIP else ARTIFACT_FILES.get(artifact.kind)
            if name:
                client.fetch(window.job_id, artifact.kind, folder / name)
        with self._lock:
            window.state, window.reason, window.take_dir = an.DONE, "", str(folder)
            self._save()
        self._window_seconds.append(time.monotonic() - t0)
        self._emit("window_done", shot, index)
        return True

    def _follow(self, client: RenderClient, shot: an.ShotJob, index: int, job_id: str):
        """Watch to a final event; None when the server no longer has the job (re-submit). A server that
        went away is waited for REATTACH_S seconds (a restart), then the shot fails with the reason."""
        gone_since = None
        while not self._stop.is_set():
            try:
                for event in client.watch(job_id):
                    if event.state in TERMINAL:
                        return event
                    if not event.heartbeat:
                        self._emit("progress", shot, index, stage=event.stage, step=event.step,
                                   total_steps=event.total_steps)
                    if self._stop.is_set():
                        return None
            except conn.ConnectionProblem as exc:
                if exc.reason == conn.NOT_FOUND:
                    window = shot.windows[index]
                    with self._lock:
                        window.job_id, window.state, window.reason = "", an.PENDING, "the server lost the job"
                        self._save()
                    return None
                if exc.reason not in (conn.UNREACHABLE, conn.LOADING):
                    raise
                gone_since = gone_since or time.monotonic()
                if time.monotonic() - gone_since > REATTACH_S:
                    raise
                self._emit("waiting", shot, index, message=str(exc))
            time.sleep(self.poll_s * 5)  # a restarting server: re-attach
        return None

    def _add_condition(self, shot: an.ShotJob, index: int) -> None:
        """The previous window's tail PNGs become this window's frame condition (its first frames)."""
        window, previous = shot.windows[index], window_dir(self.job_dir, shot, index - 1)
        bundle = window_dir(self.job_dir, shot, index) / "bundle"
        target = bundle / CONDITION_FOLDER
        tmp = target.with_name(target.name + ".part")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        with zipfile.ZipFile(previous / TAIL_FILE) as z:
            pngs = sorted(n for n in z.namelist() if n.endswith(".png"))
            if len(pngs) != window.condition_frames:
                raise ValueError(f"{previous / TAIL_FILE} holds {len(pngs)} frames; window {index + 1} continues from "
                                 f"{window.condition_frames}; render window {index} again")
            for k, name in enumerate(pngs):
                (tmp / frame_file(window.frame_start + k)).write_bytes(z.read(name))
        tmp.rename(target)
        shot_json = read_shot(bundle)
        shot_json.conditions = [Condition(CONDITION_FOLDER, window.condition_frames, self.job.strength)]
        write_shot(bundle, shot_json)

    def _assemble(self, client: RenderClient, shot: an.ShotJob) -> None:
        out = take_dir(self.job_dir, shot)
        if not shot.assembly_job_id:
            first = shot.frame_start
            windows = [pb.AssemblyWindow(job_id=w.job_id, overlap_frames=w.condition_frames,
                                         keep_frames=w.keep_end - w.frame_start + 1) for w in shot.windows]
            manifest = pb.ShotManifest(request_id=shot.assembly_request_id, shot_name=shot.name,
                                       fps=_fps(self.job_dir, shot), frame_start=first, client_info=self.client_info,
                                       assembly=pb.Assembly(windows=windows, image_sequence=self.image_sequence))
            reply = client.submit_manifest(manifest)
            with self._lock:
                shot.assembly_job_id = reply.job_id
                self._save()
        final = None
        while final is None and not self._stop.is_set():
            for event in client.watch(shot.assembly_job_id):
                if event.state in TERMINAL:
                    final = event
                    break
        if final is None:
            return
        if final.state != pb.JOB_STATE_DONE:
            with self._lock:
                shot.state, shot.reason = an.FAILED, final.message
                shot.assembly_job_id, shot.assembly_request_id = "", f"asm-{uuid.uuid4().hex[:24]}"
                self._save()
            raise ValueError(f"the assembly failed: {final.message}")
        outputs = {}
        for artifact in final.artifacts:
            if artifact.kind == pb.ARTIFACT_KIND_FRAMES_ZIP:
                frames = client.fetch(shot.assembly_job_id, artifact.kind, out / "frames.zip")
                with zipfile.ZipFile(frames) as z:
                    z.extractall(out / "frames")
                frames.unlink()
                outputs["frames"] = str(out / "frames")
            elif artifact.kind in ARTIFACT_FILES:
                name = ARTIFACT_FILES[artifact.kind]
                outputs[name] = str(client.fetch(shot.assembly_job_id, artifact.kind, out / name))
        with self._lock:
            shot.state, shot.reason, shot.outputs = an.DONE, "", outputs
            self._save()
        self._emit("shot_done", shot, outputs=outputs)

    # ------------------------------------------------------------ bookkeeping
    def _save(self) -> None:
        an.save_job(self.job, self.job_dir)

    def _emit(self, kind: str, shot: an.ShotJob, index: int | None = None, **fields) -> None:
        job = self.job
        done, total = job.windows_done, job.windows_total
        mean = sum(self._window_seconds) / len(self._window_seconds) if self._window_seconds else None
        left = total - done
        event = {"event": kind, "shot": shot.name, "shot_index": job.shots.index(shot) + 1, "shots": len(job.shots),
                 "window": None if index is None else index + 1, "windows": len(shot.windows),
                 "windows_done": done, "windows_total": total, "frames_done": job.frames_done,
                 "frames_total": job.frames_total,
                 "eta_s": None if mean is None else round(mean * left / max(1, len(self.profiles)), 1), **fields}
        self.progress(event)


def _fps(job_dir: Path, shot: an.ShotJob) -> float:
    return read_shot(window_dir(job_dir, shot, 0) / "bundle").fps
