"""One person's OpenPose keypoints (body, hands, face) and the OpenPose JSON they are written as.

Keypoints are [x, y, confidence] rows in pixels of the canvas (pixel centres at +0.5); a row of
zeros is OpenPose's "not detected". Layout as OpenPose's output format
(CMU-Perceptual-Computing-Lab/openpose doc/02_output.md, and controlnet_aux's
`encode_poses_as_dict`, comfyui_controlnet_aux src/custom_controlnet_aux/dwpose/__init__.py:183):
`pose_keypoints_2d` (18 COCO joints x 3), `hand_left_keypoints_2d` / `hand_right_keypoints_2d`
(21 x 3 each), `face_keypoints_2d` (68 x 3). Hands and face are written only for people that have
them, so a body-only file stays exactly what it was.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

BODY_POINTS, HAND_POINTS, FACE_POINTS = 18, 21, 68
_KEYS = {"pose_keypoints_2d": BODY_POINTS, "hand_left_keypoints_2d": HAND_POINTS,
         "hand_right_keypoints_2d": HAND_POINTS, "face_keypoints_2d": FACE_POINTS}


def _rows(values, n: int, what: str) -> np.ndarray:
    rows = np.asarray(values, dtype=np.float64)
    if rows.shape != (n, 3):
        raise ValueError(f"{what} must be ({n}, 3) [x, y, confidence] (got shape {rows.shape})")
    return rows


@dataclass(frozen=True, eq=False)
class Person:
    """One person in canvas pixels: body (18, 3) COCO-18; hands (2, 21, 3) [left, right] in
    OpenPose hand order, or None when the rig has no finger bones; face (68, 3) in the iBUG
    68-point order, or None when the rig has no face landmarks (never guessed)."""

    body: np.ndarray
    hands: np.ndarray | None = None
    face: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "body", _rows(self.body, BODY_POINTS, "body keypoints"))
        if self.hands is not None:
            hands = np.asarray(self.hands, dtype=np.float64)
            if hands.shape != (2, HAND_POINTS, 3):
                raise ValueError(f"hand keypoints must be (2, 21, 3) [left, right] (got shape {hands.shape})")
            object.__setattr__(self, "hands", hands)
        if self.face is not None:
            object.__setattr__(self, "face", _rows(self.face, FACE_POINTS, "face keypoints"))


def as_person(person) -> Person:
    """A Person from a Person or a bare (18, 3) body array."""
    return person if isinstance(person, Person) else Person(person)


def openpose_json(people: Sequence, width: int | None = None, height: int | None = None) -> dict:
    """OpenPose JSON: {"version": 1.3, "people": [{"pose_keypoints_2d": [x, y, c] * 18, ...}]}.

    people: Person objects or (18, 3) body arrays. Hands and face keys are added for people that
    have them. width/height (the canvas size) are added as "canvas_width"/"canvas_height" when given.
    """
    doc: dict = {"version": 1.3, "people": []}
    for i, item in enumerate(people):
        try:
            person = as_person(item)
        except ValueError as exc:
            raise ValueError(f"person {i}: {exc}") from None
        entry = {"pose_keypoints_2d": [float(v) for v in person.body.reshape(-1)]}
        if person.hands is not None:
            entry["hand_left_keypoints_2d"] = [float(v) for v in person.hands[0].reshape(-1)]
            entry["hand_right_keypoints_2d"] = [float(v) for v in person.hands[1].reshape(-1)]
        if person.face is not None:
            entry["face_keypoints_2d"] = [float(v) for v in person.face.reshape(-1)]
        doc["people"].append(entry)
    if width is not None and height is not None:
        doc["canvas_width"], doc["canvas_height"] = int(width), int(height)
    return doc


def _read(entry: Mapping, key: str, i: int) -> np.ndarray | None:
    values = entry.get(key)
    if key != "pose_keypoints_2d" and values in (None, []):  # OpenPose writes [] for "not computed"
        return None
    n = _KEYS[key]
    if not isinstance(values, list) or len(values) != 3 * n:
        got = len(values) if isinstance(values, list) else type(values).__name__
        what = "18 COCO joints" if n == BODY_POINTS else f"{n} points"
        raise ValueError(f"person {i}: {key} must hold {3 * n} numbers ({what} x 3), got {got}")
    return np.asarray(values, dtype=np.float64).reshape(n, 3)


def persons_from_openpose_json(doc: Mapping) -> list[Person]:
    """Inverse of openpose_json: one Person per entry (hands only when both are present)."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("people"), list):
        raise ValueError("OpenPose JSON must be an object with a 'people' list")
    out = []
    for i, entry in enumerate(doc["people"]):
        if not isinstance(entry, Mapping):
            raise ValueError(f"person {i}: must be an object with 'pose_keypoints_2d'")
        body = _read(entry, "pose_keypoints_2d", i)
        left, right = _read(entry, "hand_left_keypoints_2d", i), _read(entry, "hand_right_keypoints_2d", i)
        hands = np.stack([left, right]) if left is not None and right is not None else None
        out.append(Person(body, hands, _read(entry, "face_keypoints_2d", i)))
    return out


def people_from_openpose_json(doc: Mapping) -> list[np.ndarray]:
    """Bodies only: one (18, 3) float64 array per person."""
    return [p.body for p in persons_from_openpose_json(doc)]
