"""Render a .blend without a window (bpy as a module, or `blender -b`): the same operators as
the panel, run to completion, then a copy of the .blend saved with the strips in it.

    render_blend(Path("shot.blend"), out_dir=Path("out"), server="gpu-box:50051")
    -> out/shot.blend + out/renders/<scene>/<shot>/take_001/{video.mp4, audio.wav, ...}

The original .blend is never written: the copy is saved into out_dir first, so the takes'
"//renders" paths land next to the copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ADDON_PACKAGE = __package__  # headless.py sits at the top of the add-on package


@dataclass
class HeadlessResult:
    blend: Path               # the saved copy
    takes: list[Path]         # take folders of this run, in shot order
    states: list[str]         # final state per job of this run
    messages: list[str]       # per job: where it landed, or why it failed


def enable_addon() -> None:
    """Register the add-on in this process (once) so scene.ltx_render and the operators exist."""
    import addon_utils
    import bpy

    if hasattr(bpy.types.Scene, "ltx_render"):
        return
    errors: list[Exception] = []
    addon_utils.enable(ADDON_PACKAGE, default_set=True, handle_error=errors.append)
    if errors or not hasattr(bpy.types.Scene, "ltx_render"):
        raise RuntimeError(f"could not enable the add-on {ADDON_PACKAGE}: {errors}")


def render_blend(blend: Path, *, out_dir: Path, server: str, token_file: str = "", tls: bool = False,
                 ca_cert: str = "", scene_name: str = "", animation: bool = False, prompt: str = "",
                 timeout_s: float = 3600.0, control_lora: str = "", kind: str = "",
                 targets: list[str] | None = None, armatures: list[str] | None = None, camera_mode: str = "",
                 camera_lora: str = "", quality: str = "", say=print) -> HeadlessResult:
    """Open `blend`, render its shot (or whole animation) on `server`, save a copy into out_dir.

    Works on a file the panel never touched: the server is asked what it has first (as Test
    connection does), the canvas is exported at the size its control LoRA reads, and a scene that
    names no control LoRA gets the server's one that fits (said through `say`). control_lora,
    kind, targets, armatures, camera_mode, camera_lora, quality ("preview" or "final", core/preview.py)
    override the panel's settings.
    Raises ValueError for input the user must fix, RuntimeError when a render failed (the
    saved copy then still records the jobs, so re-runs can pick them up).
    """
    import bpy

    from .client.limits import choose_control_lora
    from .ui.preferences import addon_preferences, store_limits

    blend, out_dir = Path(blend), Path(out_dir)
    if not blend.is_file():
        raise ValueError(f"{blend}: no such .blend file")
    bpy.ops.wm.open_mainfile(filepath=str(blend.resolve()), load_ui=False)
    enable_addon()
    scene = bpy.context.scene
    if scene_name:
        scene = bpy.data.scenes.get(scene_name)
        if scene is None:
            raise ValueError(f"no scene {scene_name!r} in {blend.name}; scenes: "
                             f"{', '.join(s.name for s in bpy.data.scenes)}")
        bpy.context.window.scene = scene
    settings = scene.ltx_render
    if prompt:
        settings.prompt = prompt
    profile = _headless_profile(addon_preferences(), server, tls, ca_cert, token_file)
    limits = server_limits_of(profile.to_profile(), timeout_s)
    store_limits(profile.name, limits)
    settings.profile = profile.name
    _apply_overrides(scene, kind=kind, targets=targets, armatures=armatures, camera_mode=camera_mode,
                     camera_lora=camera_lora, say=say)
    if control_lora:
        settings.control_lora = control_lora
    elif not settings.control_lora.strip() and (settings.targets or settings.armatures):
        name, why = choose_control_lora(limits, settings.canvas_kind)
        settings.control_lora = name
        say(f"the scene names no control LoRA: using the server's {why}; pass --control-lora to choose")
    if quality:
        settings.quality = quality
    if not animation and settings.render_note:
        say(" ".join(n for n in (settings.render_note, settings.estimate_note) if n))
    out_dir.mkdir(parents=True, exist_ok=True)
    copy = out_dir.resolve() / blend.name
    bpy.ops.wm.save_as_mainfile(filepath=str(copy))  # "//renders" now means out_dir/renders
    before = {j.request_id for j in settings.jobs}
    error = ""
    try:
        if animation:
            bpy.ops.ltx_render.render_animation(timeout_s=timeout_s)
        else:
            bpy.ops.ltx_render.render_preview(timeout_s=timeout_s)
    except RuntimeError as exc:  # the operator's ERROR report; the records below say which shot
        error = str(exc).removeprefix("Error: ").strip()
    bpy.ops.wm.save_mainfile()
    new = [j for j in settings.jobs if j.request_id not in before]
    result = HeadlessResult(copy, [Path(bpy.path.abspath(j.take_dir)) for j in new], [j.state for j in new],
                            [j.message or j.progress_text for j in new])
    if error:
        raise RuntimeError(error)
    return result


HEADLESS_PROFILE = "headless"


def _headless_profile(prefs, server: str, tls: bool, ca_cert: str, token_file: str):
    """The preferences profile this run uses (preferences are not saved with the .blend)."""
    from .client.profiles import ServerProfile, profile_problems

    problems = profile_problems(ServerProfile(HEADLESS_PROFILE, server, use_tls=tls, ca_cert_path=ca_cert,
                                              token_file=token_file))
    if problems:
        raise ValueError("; ".join(problems))
    item = next((p for p in prefs.profiles if p.name == HEADLESS_PROFILE), None) or prefs.profiles.add()
    item.name, item.address, item.use_tls = HEADLESS_PROFILE, server, tls
    item.ca_cert_path, item.token_file = ca_cert, token_file
    return item


def server_limits_of(profile, timeout_s: float) -> dict:
    """What the server accepts (as Test connection stores it), waiting while it loads its weights."""
    import time

    from .client import connection as conn
    from .client.limits import server_limits
    from .client.render_client import RenderClient

    deadline = time.monotonic() + min(timeout_s, 600.0)
    with RenderClient(profile) as client:
        while True:
            try:
                return server_limits(client.check())
            except conn.ConnectionProblem as exc:
                if exc.reason != conn.LOADING or time.monotonic() > deadline:
                    raise RuntimeError(str(exc)) from None
            time.sleep(1.0)


def _apply_overrides(scene, *, kind: str, targets, armatures, camera_mode: str, camera_lora: str, say) -> None:
    """Command-line choices into the panel settings; a file the panel never touched gets defaults
    that work: its mesh collections as targets and its armatures as pose (said through `say`)."""
    import bpy

    settings = scene.ltx_render
    if kind:
        settings.canvas_kind = kind
    if camera_mode:
        settings.camera_mode = camera_mode
        if camera_mode == "preset":
            settings.camera_preset = camera_lora
        elif camera_mode == "trajectory":
            settings.camera_trajectory = camera_lora
    if targets is not None:
        settings.targets.clear()
        for name in targets:
            item = settings.targets.add()
            if name in bpy.data.collections:
                item.collection = bpy.data.collections[name]
            elif name in scene.objects:
                item.object = scene.objects[name]
            else:
                raise ValueError(f"--targets: no collection or object {name!r} in scene {scene.name!r}; "
                                 f"collections: {', '.join(c.name for c in scene.collection.children_recursive)}")
    if armatures is not None:
        settings.armatures.clear()
        for name in armatures:
            obj = scene.objects.get(name)
            if obj is None or obj.type != "ARMATURE":
                raise ValueError(f"--armatures: no armature {name!r} in scene {scene.name!r}; armatures: "
                                 + (", ".join(o.name for o in scene.objects if o.type == "ARMATURE") or "none"))
            settings.armatures.add().object = obj
    if targets is None and armatures is None and not settings.targets and not settings.armatures:
        meshes = [c for c in scene.collection.children if any(o.type == "MESH" for o in c.all_objects)]
        rigs = [o for o in scene.objects if o.type == "ARMATURE"]
        for collection in meshes:
            settings.targets.add().collection = collection
        for rig in rigs:
            settings.armatures.add().object = rig
        say(f"the scene names no targets: following collections {', '.join(c.name for c in meshes) or 'none'} "
            f"and armatures {', '.join(r.name for r in rigs) or 'none'}; pass --targets / --armatures to choose")


@dataclass
class AnimationResult:
    blend: Path  # the saved copy, with the takes in its sequencer
    job_file: Path
    state: str  # "done", "failed", "cancelled"
    message: str
    takes: list[Path]  # assembled take folders, in shot order


def render_animation_blend(blend: Path, *, out_dir: Path, servers: list[str], frames: str = "", token_file: str = "",
                           tls: bool = False, ca_cert: str = "", scene_name: str = "", prompt: str = "",
                           control_lora: str = "", kind: str = "", max_frames: int = 121, overlap: int = 17,
                           strength: float = 0.5, markers: bool = False, image_sequence: bool = False,
                           timeout_s: float = 24 * 3600.0, progress=None, say=print,
                           quality: str = "") -> AnimationResult:
    """Render a range of `blend` as continuous takes on `servers` (shots spread over them), into
    out_dir (animation.json, one folder per shot, the .blend copy with the takes in its sequencer).
    quality: "preview" or "final" ("" = the .blend's Quality). Rerunning with the same out_dir resumes.
    Raises ValueError for input the user must fix."""
    import bpy

    from .client.profiles import ServerProfile
    from .core import animation as an
    from .operators import records
    from .operators.animation import AnimationRender
    from .ui.preferences import addon_preferences, store_limits

    blend, out_dir = Path(blend), Path(out_dir)
    if not blend.is_file():
        raise ValueError(f"{blend}: no such .blend file")
    if not servers:
        raise ValueError("give at least one --server HOST:PORT")
    bpy.ops.wm.open_mainfile(filepath=str(blend.resolve()), load_ui=False)
    enable_addon()
    scene = bpy.context.scene
    if scene_name:
        scene = bpy.data.scenes.get(scene_name)
        if scene is None:
            raise ValueError(f"no scene {scene_name!r} in {blend.name}; scenes: "
                             f"{', '.join(s.name for s in bpy.data.scenes)}")
        bpy.context.window.scene = scene
    settings = scene.ltx_render
    if prompt:
        settings.prompt = prompt
    ranges = an.parse_frame_ranges(frames) if frames.strip() else [(scene.frame_start, scene.frame_end)]
    prefs = addon_preferences()
    items = [_headless_profile(prefs, server, tls, ca_cert, token_file) for server in servers]
    for i, item in enumerate(items):  # one preferences profile per server
        item.name = f"{HEADLESS_PROFILE}-{i + 1}" if len(items) > 1 else HEADLESS_PROFILE
    limits = server_limits_of(items[0].to_profile(), timeout_s)
    for item in items:
        store_limits(item.name, limits)
    settings.profile = items[0].name
    _apply_overrides(scene, kind=kind, targets=None, armatures=None, camera_mode="", camera_lora="", say=say)
    if control_lora:
        settings.control_lora = control_lora
    elif not settings.control_lora.strip() and (settings.targets or settings.armatures):
        from .client.limits import choose_control_lora

        name, why = choose_control_lora(limits, settings.canvas_kind)
        settings.control_lora = name
        say(f"the scene names no control LoRA: using the server's {why}; pass --control-lora to choose")
    most = min(max_frames, int(limits.get("max_frames") or max_frames))
    out_dir.mkdir(parents=True, exist_ok=True)
    copy = out_dir.resolve() / blend.name
    bpy.ops.wm.save_as_mainfile(filepath=str(copy))
    profiles: list[ServerProfile] = [item.to_profile() for item in items]
    runner = AnimationRender(scene, profiles, ranges, out_dir, max_frames=most - (most - 1) % 8, overlap=overlap,
                             strength=strength, markers=[m.frame for m in scene.timeline_markers] if markers else [],
                             image_sequence=image_sequence, progress=progress, quality=quality or settings.quality)
    if runner.resumed:
        job = runner.job
        say(f"resuming {out_dir / an.JOB_FILE}: {job.windows_done} of {job.windows_total} windows already done")
    try:
        records.run_blocking(runner, timeout_s)
    except TimeoutError as exc:
        say(str(exc))
    state, message = runner.outcome()
    bpy.ops.wm.save_mainfile()
    from .client.animation_runner import take_dir

    takes = [take_dir(out_dir, s) for s in runner.job.shots if s.done]
    return AnimationResult(copy, out_dir / an.JOB_FILE, state, message, takes)
