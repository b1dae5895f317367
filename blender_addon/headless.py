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
                 timeout_s: float = 3600.0) -> HeadlessResult:
    """Open `blend`, render its shot (or whole animation) on `server`, save a copy into out_dir.

    Raises ValueError for input the user must fix, RuntimeError when a render failed (the
    saved copy then still records the jobs, so `--resume` style re-runs can pick them up).
    """
    import bpy

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
    if prompt:
        scene.ltx_render.prompt = prompt
    out_dir.mkdir(parents=True, exist_ok=True)
    copy = out_dir.resolve() / blend.name
    bpy.ops.wm.save_as_mainfile(filepath=str(copy))  # "//renders" now means out_dir/renders
    before = {j.request_id for j in scene.ltx_render.jobs}
    options = dict(server=server, use_tls=tls, ca_cert=ca_cert, token_file=token_file, timeout_s=timeout_s)
    error = ""
    try:
        if animation:
            bpy.ops.ltx_render.render_animation(**options)
        else:
            bpy.ops.ltx_render.render_preview(**options)
    except RuntimeError as exc:  # the operator's ERROR report; the records below say which shot
        error = str(exc).removeprefix("Error: ").strip()
    bpy.ops.wm.save_mainfile()
    new = [j for j in scene.ltx_render.jobs if j.request_id not in before]
    result = HeadlessResult(copy, [Path(bpy.path.abspath(j.take_dir)) for j in new], [j.state for j in new],
                            [j.message or j.progress_text for j in new])
    if error:
        raise RuntimeError(error)
    return result
