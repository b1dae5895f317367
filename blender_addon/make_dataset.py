"""`python -m blender_addon.cli make-dataset`: a LoRA training dataset from one or more .blend files.

For each .blend, `clips` clips: the scene's own camera first, then randomised camera paths (dolly,
orbit, pan, zoom, dolly zoom: core/camera_paths.py) over random frame ranges. Each clip is made by
gather/dataset.py (target render + shot bundle + videos); dataset.json is rewritten after every
finished clip (core/dataset.py), so an interrupted run leaves a usable dataset of the clips so far.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .core.dataset import (
    CLIPS_FOLDER,
    DATASET_FILE,
    DATASET_KINDS,
    TRAJECTORY_KIND,
    DatasetIndex,
    clip_entry,
    plan_clips,
    write_index,
)
from .core.planning import fps_from_scene, frames_error, size_error
from .shot_bundle import reference_canvas_size


@dataclass
class DatasetOptions:
    kind: str
    clips: int
    num_frames: int
    width: int
    height: int
    paths: list[str]
    seed: int = 0
    reference_downscale_factor: int = 1
    captions: list[str] = field(default_factory=list)  # one per clip, cycled; [] = the scene's prompt
    targets: list[str] = field(default_factory=list)
    armatures: list[str] = field(default_factory=list)
    samples: int = 16
    render_engine: str = "cycles"
    canvas_engine: str = "auto"

    def check(self) -> None:
        if self.kind not in DATASET_KINDS:
            raise ValueError(f"--kind must be one of {', '.join(DATASET_KINDS)} (got {self.kind!r})")
        problem = frames_error(self.num_frames) or size_error(self.width, self.height, 32)
        if problem:
            raise ValueError(problem)
        f = self.reference_downscale_factor
        if f < 1 or self.width % (32 * f) or self.height % (32 * f):
            raise ValueError(f"--reference-downscale-factor {f}: the canvas would be {self.width / f:g}x"
                             f"{self.height / f:g}, which must be multiples of 32; choose a size that is a "
                             f"multiple of {32 * f}, or a smaller factor")
        needs = {"depth+pose": self.targets or self.armatures, "pose": self.armatures}.get(self.kind, True)
        if not needs:
            what = "--armatures" if self.kind == "pose" else "--targets and/or --armatures"
            raise ValueError(f"a {self.kind} canvas needs {what}: name the collections/armatures it draws")


def open_blend(path: Path, scene_name: str = ""):
    import bpy

    if not path.is_file():
        raise ValueError(f"{path}: no such .blend file")
    bpy.ops.wm.open_mainfile(filepath=str(path.resolve()), load_ui=False)
    scene = bpy.data.scenes.get(scene_name) if scene_name else bpy.context.scene
    if scene is None:
        raise ValueError(f"no scene {scene_name!r} in {path.name}; scenes: {', '.join(s.name for s in bpy.data.scenes)}")
    return scene


def _scene_ranges(blends: Sequence[Path], scene_name: str) -> list[tuple[int, int, float]]:
    ranges = []
    for blend in blends:
        scene = open_blend(blend, scene_name)
        ranges.append((scene.frame_start, scene.frame_end, fps_from_scene(scene.render.fps, scene.render.fps_base)))
    fps = {r[2] for r in ranges}
    if len(fps) > 1:
        raise ValueError(f"the .blend files run at different frame rates ({', '.join(f'{f:g}' for f in sorted(fps))} "
                         "fps); one dataset has one rate: set the same Frame Rate in each, or make two datasets")
    return ranges


def make_dataset(blends: Sequence[Path], out: Path, options: DatasetOptions, scene_name: str = "",
                 overwrite: bool = False, warn: Callable[[str], None] | None = None) -> Iterator[str]:
    """Write the dataset into `out`; yields one progress line per step."""
    from .gather.dataset import iter_make_clip, scene_caption

    options.check()
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise ValueError(f"{out} exists and is not empty; choose a new --out folder or pass --overwrite")
        if not (out / DATASET_FILE).is_file():
            raise ValueError(f"{out} is not a dataset made by make-dataset (no {DATASET_FILE}); refusing to "
                             "overwrite it: choose a new --out folder")
        shutil.rmtree(out)
    ranges = _scene_ranges(blends, scene_name)
    plans = plan_clips([(a, b) for a, b, _ in ranges], options.clips, options.num_frames, options.paths,
                       options.seed)
    cw, ch = reference_canvas_size(options.width, options.height, options.reference_downscale_factor)
    index = DatasetIndex(options.kind, options.width, options.height, options.num_frames, ranges[0][2],
                         options.reference_downscale_factor, cw, ch)
    out.mkdir(parents=True, exist_ok=True)
    loaded = -1
    for plan in plans:
        if plan.blend != loaded:
            scene = open_blend(blends[plan.blend], scene_name)
            loaded = plan.blend
        caption = options.captions[plan.index % len(options.captions)] if options.captions else scene_caption(scene)
        if not caption.strip():
            raise ValueError(f"{blends[plan.blend].name} has no prompt to use as the caption: type one in the LTX "
                             "Render panel, or pass --caption TEXT or --captions FILE (one caption per line)")
        yield f"{plan.name}: {blends[plan.blend].name} frames {plan.frame_start}-{plan.frame_end}, {_describe(plan.path)}"
        for line in iter_make_clip(scene, out / CLIPS_FOLDER / plan.name, plan, kind=options.kind,
                                   width=options.width, height=options.height, canvas_size=(cw, ch),
                                   caption=caption, targets=options.targets, armatures=options.armatures,
                                   samples=options.samples, render_engine=options.render_engine,
                                   canvas_engine=options.canvas_engine, warn=warn):
            yield f"  {line}"
        index.clips.append(clip_entry(plan, str(blends[plan.blend]), scene.name, caption, options.kind))
        write_index(out, index)
    if options.kind == TRAJECTORY_KIND:
        yield ("camera-trajectory: the backend draws the trajectory canvases from each clip's camera track; "
               f"`render-backend train {out} --model M --prepare-only` also writes reference.mp4 and "
               "ltx-trainer's metadata.jsonl")


def _describe(path) -> str:
    units = {"dolly": "x the subject distance", "orbit": "degrees", "pan": "degrees", "zoom": "x the lens",
             "dolly_zoom": "x the distance and lens"}
    if path.kind == "scene":
        return "the scene's camera"
    amount = f"{path.amount:.2f}" if path.kind in ("zoom", "dolly_zoom") else f"{path.amount:+.2f}"
    return f"camera {path.kind} {amount} {units[path.kind]}"
