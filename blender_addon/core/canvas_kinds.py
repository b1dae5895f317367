"""Canvas kinds: the reference video each published control LoRA reads, made from a clip of samples.

One entry point, `clip_canvases(samples, kind, options)`, in two passes because some kinds are
normalised over the whole clip (no flicker): `clip_stats` (pass 1), then `frame_canvas` per frame
(pass 2). An exporter that cannot hold the clip in memory calls them itself. Encodings
(docs/canvas-kinds.md):

- "depth": relative inverse depth, min-max over the whole clip, near = white, grey in 3 channels
  (what DepthCrafter / Video Depth Anything "gray" give the Depth LoRAs). scope "everything": all
  the camera sees, background (nothing hit) as infinitely far; scope "targets": the chosen targets
  only, everything else black (treated as infinitely far too, so the farthest target stays above 0).
- "pose": DWPose drawing on black (core.pose_drawing), hands and face switchable.
- "edges": silhouettes and creases from the passes, white on black (core.edges).
- "playblast": grey (or object-colour) solid shading (core.playblast), or Workbench's own render.
- "depth+pose": AVControl's composite, core.canvas.compose_control, unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..shot_bundle import CANVAS_KINDS  # one list of canvas kinds: the bundle schema's
from .camera_projection import Intrinsics
from .canvas import compose_control
from .depth import BACKGROUND_DEPTH, shot_depth_range
from .edges import CREASE_ANGLE, edges_canvas
from .openpose_json import as_person
from .playblast import DEFAULT_LIGHTING, WORLD_COLOUR, StudioLighting, playblast_canvas, srgb_encode
from .pose_drawing import pose_canvas

DEPTH_SCOPES = ("everything", "targets")
PLAYBLAST_COLOURS = ("grey", "object")
# depth+pose: the farthest target encodes at this level, never black (gather.export FAR_TARGET_LEVEL).
DEPTH_POSE_FAR_LEVEL = 0.1


@dataclass(frozen=True)
class CanvasOptions:
    """What the user chose for a kind. depth_scope: "everything" | "targets" (depth);
    hands, face: draw them (pose); crease_angle: degrees (edges); playblast_colour: "grey" |
    "object", lighting and background (linear RGB, the world's viewport colour) (playblast)."""

    depth_scope: str = "everything"
    hands: bool = True
    face: bool = True
    crease_angle: float = CREASE_ANGLE
    playblast_colour: str = "grey"
    lighting: StudioLighting = DEFAULT_LIGHTING
    background: tuple[float, float, float] = WORLD_COLOUR

    def __post_init__(self) -> None:
        if self.depth_scope not in DEPTH_SCOPES:
            raise ValueError(f"depth_scope must be one of {', '.join(DEPTH_SCOPES)} (got {self.depth_scope!r})")
        if self.playblast_colour not in PLAYBLAST_COLOURS:
            raise ValueError(f"playblast_colour must be one of {', '.join(PLAYBLAST_COLOURS)} "
                             f"(got {self.playblast_colour!r})")
        if not 0 < self.crease_angle < 180:
            raise ValueError(f"crease_angle must be between 0 and 180 degrees (got {self.crease_angle}); 30 is "
                             "Blender's smooth-by-angle default")


@dataclass(frozen=True, eq=False)
class FrameSample:
    """What the gather layer measured for one frame, in pixels of the canvas (H x W).

    depth: (H, W) planar camera Z in metres, >= 1e9 where nothing was hit; mask: (H, W) bool, True
    on the chosen targets; people: Person (or (18, 3) body arrays) in canvas pixels; normals:
    (H, W, 3) unit camera-space normals, OpenCV axes (x right, y down, z forward), 0 on background;
    object_ids: (H, W) ints, one per object, 0 = nothing; object_colours: (H, W, 3) linear RGB
    viewport display colour of the object at each pixel; solid: (H, W, 3) linear RGB of
    Workbench's own solid render (playblast without shading in numpy); intrinsics: of H x W.
    """

    depth: np.ndarray
    mask: np.ndarray
    people: tuple = field(default=())
    normals: np.ndarray | None = None
    object_ids: np.ndarray | None = None
    object_colours: np.ndarray | None = None
    solid: np.ndarray | None = None
    intrinsics: Intrinsics | None = None

    def __post_init__(self) -> None:
        depth = np.asarray(self.depth)
        if depth.ndim != 2:
            raise ValueError(f"depth must be (H, W) metres (got shape {depth.shape})")
        shape = depth.shape
        if np.shape(self.mask) != shape:
            raise ValueError(f"mask shape {np.shape(self.mask)} must match depth {shape}")
        for name in ("normals", "object_colours", "solid"):
            value = getattr(self, name)
            if value is not None and np.shape(value) != (*shape, 3):
                raise ValueError(f"{name} must be (H, W, 3) = {(*shape, 3)} (got {np.shape(value)})")
        if self.object_ids is not None and np.shape(self.object_ids) != shape:
            raise ValueError(f"object_ids shape {np.shape(self.object_ids)} must match depth {shape}")
        object.__setattr__(self, "people", tuple(as_person(p) for p in self.people))

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        h, w = np.shape(self.depth)
        return w, h


def frame_needs(kind: str, options: CanvasOptions = CanvasOptions(), workbench: bool = False) -> frozenset[str]:
    """What a FrameSample must carry for `kind` besides depth and mask: "people", "normals",
    "object_ids", "object_colours", "intrinsics" or "solid" (playblast rendered by Workbench)."""
    _check_kind(kind)
    if kind in ("pose", "depth+pose"):
        return frozenset({"people"})
    if kind == "edges":
        return frozenset({"normals", "object_ids", "intrinsics"})
    if kind == "playblast":
        if workbench:
            return frozenset({"solid"})
        return frozenset({"normals"} | ({"object_colours"} if options.playblast_colour == "object" else set()))
    return frozenset()


@dataclass(frozen=True)
class ClipStats:
    """Pass 1's result. depth+pose: near/far in metres (None when no target is ever visible);
    depth: inverse_lo/inverse_hi, the clip's min and max of 1/z in 1/m (0 = infinitely far)."""

    near: float | None = None
    far: float | None = None
    inverse_lo: float | None = None
    inverse_hi: float | None = None


def _check_kind(kind: str) -> None:
    if kind not in CANVAS_KINDS:
        raise ValueError(f"canvas kind must be one of {', '.join(CANVAS_KINDS)} (got {kind!r})")


def _inverse_depth(sample: FrameSample, scope: str) -> np.ndarray:
    """1/z (1/m) on the pixels the scope keeps, 0 elsewhere (nothing there = infinitely far)."""
    depth = np.asarray(sample.depth, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        keep = np.isfinite(depth) & (depth > 0) & (depth < BACKGROUND_DEPTH)
    if scope == "targets":
        keep &= np.asarray(sample.mask, dtype=bool)
    out = np.zeros(depth.shape)
    out[keep] = 1.0 / depth[keep]
    return out


def clip_stats(samples: Sequence[FrameSample], kind: str, options: CanvasOptions = CanvasOptions()) -> ClipStats:
    """Pass 1: the clip-wide numbers `kind` normalises with (empty for kinds that need none)."""
    _check_kind(kind)
    if kind == "depth+pose":
        masks = [np.asarray(s.mask, dtype=bool) for s in samples]
        if not any(m.any() for m in masks):  # pose only: nothing masked, the depth part stays black
            return ClipStats()
        near, far = shot_depth_range([s.depth for s in samples], masks, far_level=DEPTH_POSE_FAR_LEVEL)
        return ClipStats(near=near, far=far)
    if kind == "depth":
        lo, hi = np.inf, -np.inf
        for s in samples:
            inv = _inverse_depth(s, options.depth_scope)
            lo, hi = min(lo, float(inv.min())), max(hi, float(inv.max()))
        if not hi > 0:
            what = "target" if options.depth_scope == "targets" else "surface"
            raise ValueError(f"no {what} pixel is visible in any of the {len(samples)} frames, so the depth "
                             "canvas would be black: check the camera and the chosen targets"
                             + (", or use depth_scope='everything'" if options.depth_scope == "targets" else ""))
        return ClipStats(inverse_lo=lo, inverse_hi=hi)
    return ClipStats()


def _grey3(v: np.ndarray) -> np.ndarray:
    grey = np.round(np.clip(v, 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def _need(sample: FrameSample, kind: str, *names: str) -> None:
    missing = [n for n in names if getattr(sample, n) is None]
    if missing:
        raise ValueError(f"the {kind!r} canvas needs {', '.join(missing)} in each frame sample; render them "
                         f"(gather: DepthMaskRenderer(passes=...), see frame_needs({kind!r}))")


def frame_canvas(sample: FrameSample, kind: str, options: CanvasOptions = CanvasOptions(),
                 stats: ClipStats = ClipStats()) -> np.ndarray:
    """Pass 2: the (H, W, 3) uint8 canvas of one frame (stats: clip_stats of the whole clip)."""
    _check_kind(kind)
    w, h = sample.size
    if kind == "depth+pose":
        if stats.near is None:
            return compose_control(sample.depth, np.zeros((h, w), dtype=bool), 1.0, 2.0,
                                   [p.body for p in sample.people])
        return compose_control(sample.depth, sample.mask, stats.near, stats.far, [p.body for p in sample.people])
    if kind == "depth":
        if stats.inverse_hi is None:
            raise ValueError("the depth canvas needs the clip's range: pass clip_stats(samples, 'depth', options)")
        span = stats.inverse_hi - stats.inverse_lo
        v = (_inverse_depth(sample, options.depth_scope) - stats.inverse_lo) / span if span > 0 else \
            np.ones((h, w)) * (stats.inverse_hi > 0)
        return _grey3(v)
    if kind == "pose":
        return pose_canvas(sample.people, w, h, hands=options.hands, face=options.face)
    if kind == "edges":
        _need(sample, kind, "normals", "intrinsics")
        return edges_canvas(sample.depth, sample.normals, sample.intrinsics, sample.object_ids, options.crease_angle)
    # playblast
    if sample.solid is not None:
        return srgb_encode(sample.solid)
    _need(sample, kind, "normals")
    if options.playblast_colour == "object":
        _need(sample, kind, "object_colours")
    depth = np.asarray(sample.depth)
    with np.errstate(invalid="ignore"):
        surface = np.isfinite(depth) & (depth > 0) & (depth < BACKGROUND_DEPTH)
    colours = sample.object_colours if options.playblast_colour == "object" else None
    return playblast_canvas(surface, sample.normals, colours, options.lighting, options.background)


def clip_canvases(samples: Sequence[FrameSample], kind: str, options: CanvasOptions = CanvasOptions()
                  ) -> list[np.ndarray]:
    """Both passes over a whole clip: one (H, W, 3) uint8 canvas per sample, in order."""
    stats = clip_stats(samples, kind, options)
    return [frame_canvas(s, kind, options, stats) for s in samples]

