"""The README's example canvas exists, is small, and looks like a control canvas."""

from __future__ import annotations

from pathlib import Path

from blender_addon.core.openpose import COLORS
from blender_addon.core.png import read_png

IMAGE = Path(__file__).resolve().parents[2] / "docs" / "images" / "control-canvas-example.png"


def test_readme_canvas_is_small_grey_depth_with_openpose_colours():
    assert IMAGE.stat().st_size < 100 * 1024, "regenerate with scripts/make_readme_images.py"
    canvas = read_png(IMAGE)
    assert canvas.shape == (512, 768, 3)
    grey = (canvas[..., 0] == canvas[..., 1]) & (canvas[..., 1] == canvas[..., 2])
    assert (canvas[grey][:, 0] == 0).mean() > 0.5  # mostly black, masked-out background
    assert ((canvas[grey][:, 0] > 40) & (canvas[grey][:, 0] < 250)).sum() > 10_000  # grey figures
    colours = {tuple(c) for c in canvas[~grey].reshape(-1, 3).tolist()}
    assert sum(tuple(c) in colours for c in COLORS.tolist()) >= 16  # nearly every joint colour shows
