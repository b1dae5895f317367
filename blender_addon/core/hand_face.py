"""Hand (21 points) and face (68 points) keypoints from armature bones, as DWPose/OpenPose order them.

Hands: OpenPose's hand model, 21 points per hand: 0 the wrist (the body's wrist joint), then per
finger from the palm out: thumb 1-4 (CMC, MCP, IP, tip), index 5-8, middle 9-12, ring 13-16,
pinky 17-20 (MCP, PIP, DIP, tip). Drawn along HAND_EDGES (controlnet_aux `draw_handpose`,
comfyui_controlnet_aux src/custom_controlnet_aux/dwpose/util.py:152-200). From bones: each finger
has three bones from the knuckle out (the thumb's first one is its metacarpal), so its four points
are the three heads and the last bone's tail (or the rig's end bone, e.g. Mixamo's "...Index4").

Face: the iBUG 300-W 68 landmarks (jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67).
No common rig has bones for them, so they come only from what the rig really has: a bone map
(keys face_0 .. face_67) or bones named face_0 .. face_67 (also "face.07", "Face07"); otherwise
the person has no face and the export says so in a warning. A face is never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from .openpose import (
    FACE_KEYS,
    FINGERS,
    HAND21_NAMES,
    RIG_MAPS,
    _bone_point,  # same package: one bone lookup (namespaces, Mixamo prefixes) for body and hands
    _lookup,
    _normalize,
    detect_rig,
)

# OpenPose hand topology: 20 bones, the colour of edge i is hue i / 20 (see core.pose_drawing).
HAND_EDGES = tuple((0 if k == 0 else 1 + 4 * f + k - 1, 1 + 4 * f + k) for f in range(5) for k in range(4))
_FACE_NAME = re.compile(r"^face[._ ]?(\d{1,2})$")


def _four(first: str, second: str, third: str, end: str | None = None) -> list[list[str]]:
    """Candidates for one finger's 4 points: three bone heads, then the end bone or the third's tail."""
    return [[first], [second], [third], ([end] if end else []) + [f"{third}:tail"]]


def _rigify(side: str) -> dict[str, list[list[str]]]:
    s = side.upper()
    out = {}
    for finger in FINGERS:
        base = "thumb" if finger == "thumb" else f"f_{finger}"
        points: list[list[str]] = [[], [], [], []]
        for prefix in ("DEF-", "ORG-", ""):
            for k, cands in enumerate(_four(*(f"{prefix}{base}.0{i}.{s}" for i in (1, 2, 3))), start=0):
                points[k].extend(cands)
        out[finger] = points
    return out


def _mixamo(side: str) -> dict[str, list[list[str]]]:
    s = "Left" if side == "l" else "Right"
    return {f: _four(*(f"{s}Hand{f.title()}{i}" for i in (1, 2, 3, 4))) for f in FINGERS}


def _unreal(side: str) -> dict[str, list[list[str]]]:
    return {f: _four(*(f"{f}_0{i}_{side}" for i in (1, 2, 3))) for f in FINGERS}


def _cc(side: str) -> dict[str, list[list[str]]]:
    names = {"thumb": "Thumb", "index": "Index", "middle": "Mid", "ring": "Ring", "pinky": "Pinky"}
    return {f: _four(*(f"CC_Base_{side.upper()}_{n}{i}" for i in (1, 2, 3))) for f, n in names.items()}


def _biped(side: str) -> dict[str, list[list[str]]]:
    s = side.upper()
    return {f: _four(f"Bip01 {s} Finger{n}", f"Bip01 {s} Finger{n}1", f"Bip01 {s} Finger{n}2",
                     f"Bip01 {s} Finger{n}Nub") for n, f in enumerate(FINGERS)}


_HAND_RIGS = {"rigify": _rigify, "mixamo": _mixamo, "unreal": _unreal, "cc": _cc, "biped": _biped}
assert set(_HAND_RIGS) == set(RIG_MAPS)


def hand_world_points(bone_heads: Mapping[str, Sequence[float]], bone_tails: Mapping[str, Sequence[float]],
                      wrists: np.ndarray, rig: str | None = None,
                      manual_map: Mapping[str, str] | None = None) -> np.ndarray | None:
    """(2, 21, 3) world points [left, right] in OpenPose hand order (metres), NaN where the rig
    lacks the bone; None when neither hand has a single finger point (the rig has no fingers).

    wrists: (2, 3) the body's l_wrist and r_wrist world points (core.openpose COCO joints).
    rig: a rig family (None: detected from the bone names). manual_map: bone-map keys like
    "l_index_2" -> "bone" or "bone:tail", overriding the rig's names.
    """
    rig = rig or detect_rig(bone_heads.keys())
    table = _lookup(bone_heads.keys())
    out = np.full((2, 21, 3), np.nan)
    out[:, 0] = np.asarray(wrists, dtype=np.float64).reshape(2, 3)
    for h, side in enumerate("lr"):
        fingers = _HAND_RIGS[rig](side) if rig in _HAND_RIGS else {}
        for f, finger in enumerate(FINGERS):
            for k in range(4):
                key = f"{side}_{finger}_{k + 1}"
                specs = [manual_map[key]] if manual_map and key in manual_map else fingers.get(finger, [[]] * 4)[k]
                for spec in specs:
                    point = _bone_point(spec, table, bone_heads, bone_tails)
                    if point is not None:
                        out[h, 1 + 4 * f + k] = point
                        break
    if not np.isfinite(out[:, 1:]).all(axis=2).any():
        return None
    return out


def face_bones(bone_names: Iterable[str], manual_map: Mapping[str, str] | None = None) -> dict[int, str]:
    """Landmark index (0-67) -> bone spec, from the bone map's face_N keys, else from bones named
    face_N / face.N (first one wins)."""
    found: dict[int, str] = {}
    for name in bone_names:
        m = _FACE_NAME.match(_normalize(name))
        if m and int(m.group(1)) < 68:
            found.setdefault(int(m.group(1)), name)
    for i, key in enumerate(FACE_KEYS):
        if manual_map and key in manual_map:
            found[i] = manual_map[key]
    return found


def face_world_points(bone_heads: Mapping[str, Sequence[float]], bone_tails: Mapping[str, Sequence[float]],
                      manual_map: Mapping[str, str] | None = None) -> np.ndarray | None:
    """(68, 3) world points of the face landmarks (bone heads, or tails with "bone:tail"), NaN for
    landmarks the rig lacks; None when it has none at all."""
    specs = face_bones(bone_heads.keys(), manual_map)
    if not specs:
        return None
    table = _lookup(bone_heads.keys())
    out = np.full((68, 3), np.nan)
    for i, spec in specs.items():
        point = _bone_point(spec, table, bone_heads, bone_tails)
        if point is not None:
            out[i] = point
    return out if np.isfinite(out).all(axis=1).any() else None


def hand_face_warnings(armature: str, bone_names: Iterable[str], bone_map: Mapping[str, str] | None,
                       hands: bool, face: bool) -> list[str]:
    """What the pose canvas will lack for this armature and how to fix it ([] when nothing)."""
    names = list(bone_names)
    heads = {n: (0.0, 0.0, 0.0) for n in names}
    out = []
    if hands and hand_world_points(heads, heads, np.zeros((2, 3)), manual_map=bone_map) is None:
        out.append(f"armature {armature!r}: no finger bones found (Rigify f_index.01.L, Mixamo LeftHandIndex1, "
                   f"Unreal index_01_l, CC CC_Base_L_Index1, Biped Bip01 L Finger1), so its hands are not drawn; "
                   f"map them with --bone-map, keys l_{HAND21_NAMES[1]} .. r_pinky_4 (or turn hands off)")
    if face and not face_bones(names, bone_map):
        out.append(f"armature {armature!r} has no face landmark bones, so no face is drawn (faces are never "
                   f"guessed); map 68 bones with --bone-map keys face_0 .. face_67 (iBUG 68-point order) "
                   f"or turn the face off")
    return out
