"""Edges from exact passes (a ray-cast cube): lines on the silhouette and the creases, none on flat
faces; depth jumps on one object; line width matched to Canny at 512 px."""

from __future__ import annotations

import numpy as np
import pytest

from blender_addon.core.camera_projection import Intrinsics
from blender_addon.core.canvas_kinds import FrameSample, clip_canvases
from blender_addon.core.edges import edge_lines, line_canvas

from .raycast import cast_boxes, rotation

K = Intrinsics(80.0, 80.0, 48.0, 32.0, 96, 64)


def _cube():
    return cast_boxes(K, [(np.array([0.0, 0.0, 5.0]), np.array([1.0, 1.0, 1.0]), rotation(0.5, 0.6, 0.2))])


def _face_interiors(normals: np.ndarray, ids: np.ndarray) -> list[np.ndarray]:
    """Pixels of each visible face whose 8 neighbours are on the same face (away from every edge)."""
    faces = []
    for n in np.unique(np.round(normals[ids > 0], 6), axis=0):
        face = (np.abs(normals - n).max(axis=2) < 1e-6) & (ids > 0)
        inner = face.copy()
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                inner &= np.roll(np.roll(face, dy, 0), dx, 1)
        faces.append(inner)
    return faces


def test_cube_has_lines_on_its_silhouette_and_creases_only():
    depth, normals, ids = _cube()
    lines = edge_lines(depth, normals, K, ids)
    faces = _face_interiors(normals, ids)
    assert len(faces) == 3 and all(f.sum() > 40 for f in faces)  # three faces in view
    for face in faces:
        assert not (lines & face).any()  # flat faces: no line
    # silhouette: every cube pixel next to the background carries a line, background never does
    cube = ids > 0
    border = cube & ~(np.roll(cube, 1, 0) & np.roll(cube, -1, 0) & np.roll(cube, 1, 1) & np.roll(cube, -1, 1))
    assert lines[border].all() and not lines[~cube].any()
    # creases: each pair of visible faces meets along a line of marked pixels
    crease = lines & cube & ~border
    assert crease.sum() > 30
    near_two_faces = [sum(np.roll(np.roll(f0, dy, 0), dx, 1)[y, x] for f0 in
                          [(np.abs(normals - n).max(axis=2) < 1e-6) for n in np.unique(np.round(normals[cube], 6), axis=0)]
                          for dy in (-1, 0, 1) for dx in (-1, 0, 1)) for y, x in zip(*np.nonzero(crease), strict=True)]
    assert min(near_two_faces) > 0
    # 1 px lines: no 2x2 block of line pixels inside the cube (lines never double up)
    blocks = crease[:-1, :-1] & crease[1:, :-1] & crease[:-1, 1:] & crease[1:, 1:]
    assert not blocks.any()


def test_a_box_in_front_of_another_of_the_same_object_is_a_depth_jump():
    boxes = [(np.array([0.0, 0.0, 8.0]), np.array([6.0, 6.0, 0.5]), np.eye(3)),  # fills the frame
             (np.array([0.0, 0.0, 5.0]), np.array([0.5, 0.5, 0.5]), np.eye(3))]
    depth, normals, ids = cast_boxes(K, boxes)
    one_object = np.where(ids > 0, 1, 0)  # same object id: only depth says the small box is in front
    lines = edge_lines(depth, normals, K, one_object)
    front = depth < 6
    ring = front & ~(np.roll(front, 1, 0) & np.roll(front, -1, 0) & np.roll(front, 1, 1) & np.roll(front, -1, 1))
    assert lines[ring].all()  # the outline of the near box, on the near box's pixels
    assert not lines[(depth > 6) & (depth < 9)].any()  # the face-on back box is flat: no line on it
    # both facing the camera: without the depth test there would be no line at all
    assert (np.abs(normals[depth < 1e9] - [0, 0, -1]).max() < 1e-9)


def test_a_tilted_plane_has_no_lines_however_steep():
    boxes = [(np.array([0.0, 0.0, 6.0]), np.array([10.0, 10.0, 0.01]), rotation(1.45, 0.0, 0.0))]  # 83 deg
    depth, normals, ids = cast_boxes(K, boxes)
    lines = edge_lines(depth, normals, K, ids)
    plane = ids > 0
    assert plane.sum() > 1000 and np.ptp(depth[plane]) > 5.0
    inner = plane & np.roll(plane, 1, 0) & np.roll(plane, -1, 0)
    assert not lines[inner].any()


@pytest.mark.parametrize("size, width, level", [((64, 96), 1, 32), ((256, 384), 1, 128), ((512, 768), 1, 255),
                                                ((1024, 1536), 2, 255)])
def test_line_width_follows_canny_at_512(size, width, level):
    h, w = size
    lines = np.zeros((h, w), dtype=bool)
    lines[:, w // 2] = True  # a vertical 1 px line
    canvas = line_canvas(lines)
    row = canvas[h // 2, :, 0]
    assert (row > 0).sum() == width and row.max() == level
    assert (canvas[..., 0] == canvas[..., 2]).all()


def test_edges_kind_through_the_clip_entry_point():
    depth, normals, ids = _cube()
    sample = FrameSample(depth, np.zeros(depth.shape, bool), normals=normals, object_ids=ids, intrinsics=K)
    canvas = clip_canvases([sample], "edges")[0]
    expected = line_canvas(edge_lines(depth, normals, K, ids))
    assert np.array_equal(canvas, expected) and set(np.unique(canvas)) == {0, round(255 * 64 / 512)}
