"""The `playblast` canvas: the blockout in grey solid shading, as Blender's Solid mode draws it.

Workbench's studio lighting (blender/blender source/blender/draw/engines/workbench/shaders/
workbench_world_light_lib.glsl, `get_world_lighting`, with specular highlights off): four
directional lights fixed to the view plus an ambient term,

    linear = base_colour * (ambient + sum_i diffuse_i * wrapped(dot(L_i, N), wrap_i))
    wrapped(nl, w) = clamp((nl + w) * fast_rcp((w + 1)^2), 0, 1)

with N and L_i in view space (OpenGL camera axes: x right, y up, z toward the viewer) and
`fast_rcp` Workbench's approximate reciprocal (Drobot 2014: reinterpret 0x7eef370b - bits(v) as a
float; 0.934 for 1.0, so it is kept, not "fixed"). Lights and ambient are the user's studio light
(Preferences > Lights; DEFAULT_LIGHTING holds Blender 5.0's "Default"); base colour is Workbench's
default grey 0.8 or each object's viewport display colour (Object > Viewport Display > Color).
Background: the world's viewport colour. Output: linear -> sRGB (Blender's "Standard" view
transform), rounded to 8 bits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GREY = 0.8  # Workbench's default single colour (linear)
WORLD_COLOUR = (0.05, 0.05, 0.05)  # a new world's viewport colour (linear; bpy.data.worlds.new().color)


@dataclass(frozen=True)
class SolidLight:
    """One studio light: direction (unit, view space, towards the light), diffuse colour (linear
    RGB) and wrap ("smooth" in the preferences, 0..1)."""

    direction: tuple[float, float, float]
    diffuse: tuple[float, float, float]
    wrap: float


@dataclass(frozen=True)
class StudioLighting:
    ambient: tuple[float, float, float]
    lights: tuple[SolidLight, ...]


# Blender 5.0.1, Preferences > Lights > Studio "Default" (bpy.context.preferences.studio_lights).
DEFAULT_LIGHTING = StudioLighting(
    ambient=(0.0, 0.0, 0.0),
    lights=(
        SolidLight((-0.352546, 0.170931, -0.920051), (0.033103, 0.033103, 0.033103), 0.526620),
        SolidLight((-0.408163, 0.346939, 0.844415), (0.521083, 0.538226, 0.538226), 0.0),
        SolidLight((0.521739, 0.826087, 0.212999), (0.038403, 0.034357, 0.049530), 0.478261),
        SolidLight((0.624519, -0.562067, -0.542269), (0.090838, 0.082080, 0.072255), 0.2),
    ),
)


def fast_rcp(x: np.ndarray) -> np.ndarray:
    """Workbench's approximate 1/x on float32 (a bit trick: few % off, 0.934 at x = 1)."""
    bits = np.asarray(x, dtype=np.float32).view(np.int32)
    return (np.int32(0x7EEF370B) - bits).view(np.float32)


def solid_shading(normals: np.ndarray, base_colour, lighting: StudioLighting = DEFAULT_LIGHTING) -> np.ndarray:
    """(H, W, 3) float32 linear RGB of surfaces with camera-space `normals` (H, W, 3), OpenCV axes
    (x right, y down, z forward; a surface facing the camera has n = (0, 0, -1)).

    base_colour: (3,) or (H, W, 3) linear RGB.
    """
    n = np.asarray(normals, dtype=np.float32)
    n_view = n * np.array([1.0, -1.0, -1.0], dtype=np.float32)  # OpenCV -> OpenGL view axes
    light = np.zeros(n.shape, dtype=np.float32) + np.asarray(lighting.ambient, dtype=np.float32)
    for sl in lighting.lights:
        w = np.float32(sl.wrap)
        nl = n_view @ np.asarray(sl.direction, dtype=np.float32)
        wrapped = np.clip((nl + w) * fast_rcp((w + np.float32(1.0)) ** 2), 0.0, 1.0)
        light += wrapped[..., None] * np.asarray(sl.diffuse, dtype=np.float32)
    return light * np.asarray(base_colour, dtype=np.float32)


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """Linear RGB -> 8-bit sRGB (the piecewise sRGB curve), clipped to [0, 1] first."""
    x = np.clip(np.asarray(linear, dtype=np.float64), 0.0, 1.0)
    encoded = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)
    return np.round(encoded * 255.0).astype(np.uint8)


def playblast_canvas(surface: np.ndarray, normals: np.ndarray, colours=None,
                     lighting: StudioLighting = DEFAULT_LIGHTING, background=WORLD_COLOUR) -> np.ndarray:
    """(H, W, 3) uint8 sRGB solid-shaded playblast.

    surface: (H, W) bool, True where a surface was hit; normals: (H, W, 3) camera-space (OpenCV);
    colours: (H, W, 3) linear object colours, or None for grey; background: linear RGB.
    """
    surface = np.asarray(surface, dtype=bool)
    shaded = solid_shading(normals, GREY if colours is None else colours, lighting)
    out = np.where(surface[..., None], shaded, np.asarray(background, dtype=np.float32))
    return srgb_encode(out)
