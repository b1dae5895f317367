"""OpenPose COCO-18 from armature bones: joint map per rig family, projection, JSON, drawing.

World positions come from bone heads/tails (the gather layer passes `matrix_world @ head`).
Each COCO joint is one bone's head or tail: shoulder = upper-arm head, elbow = forearm head,
wrist = hand head, hip = thigh head, knee = shin head, ankle = foot head. The COCO neck is the
midpoint of the two shoulders (not a bone). Eyes, ears and nose come from face bones when the
rig has them, else they are estimated from the head bone (see `_estimate_face`).

Drawing follows controlnet_aux's body pose style: limbs are filled ellipses in the limb colour
times 0.6, joints are discs in the full colour, stick half-width 4 px and joint radius 4 px
at 512 px (scaled with the smaller image side).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from .openpose_json import openpose_json, people_from_openpose_json  # noqa: F401  (their home before)

COCO18_NAMES = (
    "nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist",
    "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "r_eye", "l_eye", "r_ear", "l_ear",
)  # fmt: skip
_INDEX = {name: i for i, name in enumerate(COCO18_NAMES)}
# OpenPose hand order: wrist, then 4 points per finger from the palm out (thumb CMC, MCP, IP, tip;
# fingers MCP, PIP, DIP, tip). The wrist is the body's wrist joint.
FINGERS = ("thumb", "index", "middle", "ring", "pinky")
HAND21_NAMES = ("wrist",) + tuple(f"{finger}_{k}" for finger in FINGERS for k in range(1, 5))
# Bone-map keys beyond COCO-18: "l_index_2" (a hand point, side + HAND21_NAMES[1:]) and "face_0" ..
# "face_67" (the iBUG 68 face landmarks, only from bones the rig really has).
HAND_KEYS = tuple(f"{side}_{name}" for side in "lr" for name in HAND21_NAMES[1:])
FACE_KEYS = tuple(f"face_{i}" for i in range(68))
_EXTRA_KEYS = frozenset(HAND_KEYS + FACE_KEYS)

# OpenPose's limb order (controlnet_aux limbSeq, 0-based); limb i is drawn in COLORS[i].
LIMBS = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)  # fmt: skip
COLORS = np.array(
    [
        [255, 0, 0], [255, 85, 0], [255, 170, 0], [255, 255, 0], [170, 255, 0], [85, 255, 0],
        [0, 255, 0], [0, 255, 85], [0, 255, 170], [0, 255, 255], [0, 170, 255], [0, 85, 255],
        [0, 0, 255], [85, 0, 255], [170, 0, 255], [255, 0, 255], [255, 0, 170], [255, 0, 85],
    ],
    dtype=np.uint8,
)  # fmt: skip  (18, 3) RGB: joint i uses COLORS[i]
LIMB_COLORS = (COLORS[: len(LIMBS)].astype(np.float64) * 0.6).astype(np.uint8)  # (17, 3)

# Per rig: COCO joint -> candidate bones, first one present wins; ":tail" picks the bone's tail.
# Names are matched after _normalize (case-insensitive, namespaces/"mixamorig" prefixes removed).
_LIMB_JOINTS = ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")


def _rigify() -> dict[str, list[str]]:
    parts = {"shoulder": "upper_arm", "elbow": "forearm", "wrist": "hand", "hip": "thigh",
             "knee": "shin", "ankle": "foot"}  # fmt: skip
    rig: dict[str, list[str]] = {}
    for side, suffix in (("l", "L"), ("r", "R")):
        for joint, bone in parts.items():
            rig[f"{side}_{joint}"] = [f"DEF-{bone}.{suffix}", f"ORG-{bone}.{suffix}", f"{bone}.{suffix}",
                                      f"{bone}_fk.{suffix}"]  # fmt: skip
        rig[f"{side}_eye"] = [f"ORG-eye.{suffix}", f"MCH-eye.{suffix}", f"eye.{suffix}"]
        rig[f"{side}_ear"] = [f"ORG-ear.{suffix}", f"DEF-ear.{suffix}", f"ear.{suffix}"]
    rig["nose"] = ["ORG-nose.002", "DEF-nose.002", "nose.002"]  # nose.002 starts at the tip
    rig["head"] = ["DEF-spine.006", "ORG-spine.006", "spine.006", "head"]
    return rig


def _mixamo() -> dict[str, list[str]]:
    parts = {"shoulder": "Arm", "elbow": "ForeArm", "wrist": "Hand", "hip": "UpLeg", "knee": "Leg",
             "ankle": "Foot"}  # fmt: skip
    rig = {f"{s[0].lower()}_{j}": [f"{s}{b}"] for s in ("Left", "Right") for j, b in parts.items()}
    # HeadTop_End's head is the crown; the Head bone's own tail depends on the FBX import options.
    rig.update(l_eye=["LeftEye"], r_eye=["RightEye"], head=["Head"], head_top=["HeadTop_End"])
    return rig


def _unreal() -> dict[str, list[str]]:
    parts = {"shoulder": "upperarm", "elbow": "lowerarm", "wrist": "hand", "hip": "thigh", "knee": "calf",
             "ankle": "foot"}  # fmt: skip
    rig = {f"{s}_{j}": [f"{b}_{s}"] for s in ("l", "r") for j, b in parts.items()}
    rig["head"] = ["head"]
    return rig


def _cc() -> dict[str, list[str]]:
    parts = {"shoulder": "Upperarm", "elbow": "Forearm", "wrist": "Hand", "hip": "Thigh", "knee": "Calf",
             "ankle": "Foot"}  # fmt: skip
    rig = {f"{s}_{j}": [f"CC_Base_{s.upper()}_{b}"] for s in ("l", "r") for j, b in parts.items()}
    rig.update(l_eye=["CC_Base_L_Eye"], r_eye=["CC_Base_R_Eye"], head=["CC_Base_Head"])
    return rig


def _biped() -> dict[str, list[str]]:
    parts = {"shoulder": "UpperArm", "elbow": "Forearm", "wrist": "Hand", "hip": "Thigh", "knee": "Calf",
             "ankle": "Foot"}  # fmt: skip
    rig = {f"{s}_{j}": [f"Bip01 {s.upper()} {b}"] for s in ("l", "r") for j, b in parts.items()}
    rig["head"] = ["Bip01 Head"]
    return rig


RIG_MAPS: dict[str, dict[str, list[str]]] = {
    "rigify": _rigify(), "mixamo": _mixamo(), "unreal": _unreal(), "cc": _cc(), "biped": _biped(),
}  # fmt: skip


def _normalize(bone: str) -> str:
    """Match key for a bone name: drop "Armature|" / "Character:" namespaces and Mixamo's
    "mixamorig<N>:" / "mixamorig_" prefix, fold 3ds Max "Bip001" to "Bip01", lower-case."""
    name = re.split(r"[:|]", bone)[-1]
    name = re.sub(r"^mixamorig\d*_", "", name, flags=re.IGNORECASE)
    name = re.sub(r"^bip0*1\b", "bip01", name, flags=re.IGNORECASE)
    return name.lower()


def _lookup(bone_names: Iterable[str]) -> dict[str, str]:
    """normalised key -> actual bone name (first wins)."""
    table: dict[str, str] = {}
    for name in bone_names:
        table.setdefault(_normalize(name), name)
    return table


def detect_rig(bone_names: Iterable[str]) -> str:
    """Rig family of an armature from its bone names: "rigify" | "mixamo" | "unreal" | "cc" |
    "biped" | "unknown" (fewer than 6 of the 12 limb joints found for every family)."""
    table = _lookup(bone_names)
    best, best_hits = "unknown", 5
    for rig, joints in RIG_MAPS.items():
        hits = sum(
            any(_normalize(c) in table for c in joints[f"{side}_{j}"]) for side in "lr" for j in _LIMB_JOINTS
        )
        if hits > best_hits:
            best, best_hits = rig, hits
    return best


def _bone_point(spec: str, table: Mapping[str, str], heads: Mapping, tails: Mapping) -> np.ndarray | None:
    """World position for "bone" (head) or "bone:tail"/"bone:head"; None when the bone is absent."""
    bone, end = spec, "head"
    for suffix in (":tail", ":head"):
        if spec.endswith(suffix):
            bone, end = spec[: -len(suffix)], suffix[1:]
    actual = bone if bone in heads else table.get(_normalize(bone))
    if actual is None:
        return None
    source = tails if end == "tail" else heads
    if actual not in source:
        return None
    return np.asarray(source[actual], dtype=np.float64).reshape(3)


def _estimate_face(joints: np.ndarray, head: np.ndarray | None, head_tail: np.ndarray | None) -> None:
    """Fill missing nose/eyes/ears from the head bone (in place), when shoulders give a facing.

    Frame: up = head bone direction, left = r_shoulder -> l_shoulder made orthogonal to up,
    forward = left x up (a Blender character facing -Y with left +X and up +Z gets forward -Y).
    With h = head bone length (neck top to crown, ~0.2 m on an adult), from the bone head:
    nose = 0.30h up, 0.55h forward; eyes = 0.45h up, 0.45h forward, 0.16h sideways;
    ears = 0.40h up, 0.05h forward, 0.38h sideways. A rough, average-adult guess: good enough
    for a control skeleton, not for measurements.
    """
    if head is None or head_tail is None:
        return
    l_sh, r_sh = joints[_INDEX["l_shoulder"]], joints[_INDEX["r_shoulder"]]
    axis = head_tail - head
    h = float(np.linalg.norm(axis))
    if h <= 0 or not (np.all(np.isfinite(l_sh)) and np.all(np.isfinite(r_sh))):
        return
    up = axis / h
    left = (l_sh - r_sh) - np.dot(l_sh - r_sh, up) * up
    if np.linalg.norm(left) < 1e-9:
        return
    left /= np.linalg.norm(left)
    forward = np.cross(left, up)
    guesses = {
        "nose": (0.30, 0.55, 0.0), "l_eye": (0.45, 0.45, 0.16), "r_eye": (0.45, 0.45, -0.16),
        "l_ear": (0.40, 0.05, 0.38), "r_ear": (0.40, 0.05, -0.38),
    }  # fmt: skip
    for name, (u, f, s) in guesses.items():
        i = _INDEX[name]
        if not np.all(np.isfinite(joints[i])):
            joints[i] = head + h * (u * up + f * forward + s * left)


def _head_bone(rig_map: Mapping, table: Mapping, heads: Mapping, tails: Mapping):
    """(head, crown) world points of the rig's head bone, or (None, None). The crown is the
    "head_top" bone when the rig has one, else the head bone's tail."""
    for spec in rig_map.get("head", []):
        head = _bone_point(spec, table, heads, tails)
        if head is None:
            continue
        for top in rig_map.get("head_top", []):
            crown = _bone_point(top, table, heads, tails)
            if crown is not None:
                return head, crown
        return head, _bone_point(spec + ":tail", table, heads, tails)
    return None, None


def coco18_world_joints(
    bone_heads: Mapping[str, Sequence[float]],
    bone_tails: Mapping[str, Sequence[float]],
    rig: str | None = None,
    manual_map: Mapping[str, str] | None = None,
    estimate_face: bool = True,
) -> np.ndarray:
    """(18, 3) world positions of the COCO-18 joints (metres), NaN for joints not found.

    rig: a RIG_MAPS family, or None to detect it from the bone names. manual_map: COCO name ->
    "bone" or "bone:tail", overriding the rig map (for custom rigs; "unknown" rigs need it).
    """
    rig = rig or detect_rig(bone_heads.keys())
    if rig != "unknown" and rig not in RIG_MAPS:
        raise ValueError(f"unknown rig {rig!r}; use one of {sorted(RIG_MAPS)} or 'unknown' with a manual_map")
    table = _lookup(bone_heads.keys())
    joints = np.full((18, 3), np.nan)
    rig_map = RIG_MAPS.get(rig, {})
    for name, candidates in rig_map.items():
        if name in _INDEX:
            for spec in candidates:
                point = _bone_point(spec, table, bone_heads, bone_tails)
                if point is not None:
                    joints[_INDEX[name]] = point
                    break
    for name, spec in (manual_map or {}).items():
        if name in _EXTRA_KEYS:  # hand and face points: core.hand_face reads them
            continue
        if name not in _INDEX:
            raise ValueError(f"manual_map key {name!r} is not a COCO-18 joint; use one of {', '.join(COCO18_NAMES)}")
        point = _bone_point(spec, table, bone_heads, bone_tails)
        if point is None:
            raise ValueError(
                f"manual_map[{name!r}] = {spec!r}: no such bone in the armature "
                f"(e.g. {', '.join(sorted(bone_heads)[:8])}); write 'BoneName' or 'BoneName:tail'"
            )
        joints[_INDEX[name]] = point
    if not (manual_map and "neck" in manual_map):
        joints[_INDEX["neck"]] = (joints[_INDEX["l_shoulder"]] + joints[_INDEX["r_shoulder"]]) / 2
    if estimate_face:
        head, tail = _head_bone(rig_map, table, bone_heads, bone_tails)
        _estimate_face(joints, head, tail)
    return joints


BONE_MAP_ANY = "*"  # bone-map key for every armature without a map of its own
KNOWN_RIGS = "Rigify, Mixamo, Unreal, CC, Biped"
_BONE_MAP_SHAPE = '{"armature name or *": {"coco joint": "bone name", ...}}'


def parse_bone_maps(doc, source: str = "bone map") -> dict[str, dict[str, str]]:
    """Validate a bone-map document {armature name or "*": {COCO joint: "bone" or "bone:tail"}}."""
    if not isinstance(doc, Mapping) or not doc:
        raise ValueError(f"{source} must be a JSON object {_BONE_MAP_SHAPE}")
    out: dict[str, dict[str, str]] = {}
    for armature, joints in doc.items():
        if not isinstance(joints, Mapping) or not joints:
            raise ValueError(f"{source}[{armature!r}] must be an object of COCO joint -> bone name, "
                             f"e.g. {{\"l_shoulder\": \"UpperArm.L\"}}")
        unknown = [j for j in joints if j not in _INDEX and j not in _EXTRA_KEYS]
        if unknown:
            raise ValueError(f"{source}[{armature!r}] (hands: l_thumb_1 .. r_pinky_4, {'/'.join(FINGERS)} 1-4; "
                             f"face: face_0 .. face_67): {', '.join(map(repr, unknown))} not COCO-18 joint "
                             f"name(s); use: {', '.join(COCO18_NAMES)}")
        bad = [j for j, b in joints.items() if not isinstance(b, str) or not b.strip()]
        if bad:
            raise ValueError(f"{source}[{armature!r}][{bad[0]!r}] must be a bone name (\"Bone\" or \"Bone:tail\")")
        out[str(armature)] = {j: b.strip() for j, b in joints.items()}
    return out


def bone_map_for(bone_maps: Mapping[str, Mapping[str, str]], armature: str) -> Mapping[str, str] | None:
    """The armature's own map, else the "*" map, else None."""
    return bone_maps.get(armature, bone_maps.get(BONE_MAP_ANY))


def check_bone_map(armature: str, bone_map: Mapping[str, str], bone_names: Iterable[str]) -> None:
    """Raise ValueError naming the mapped bones the armature lacks (before any frame is rendered)."""
    names = list(bone_names)
    table = _lookup(names)
    missing = []
    for joint, spec in bone_map.items():
        bone = spec.rsplit(":", 1)[0] if spec.endswith((":tail", ":head")) else spec
        if bone not in names and _normalize(bone) not in table:
            missing.append(f"{joint}={spec!r}")
    if missing:
        raise ValueError(f"bone map for armature {armature!r}: no bone for {', '.join(missing)}; its bones are "
                         f"{', '.join(sorted(names)[:12])}{' ...' if len(names) > 12 else ''}")


def unmapped_rig_warning(armature: str, bone_names: Iterable[str], bone_map: Mapping[str, str] | None) -> str:
    """A warning when the armature's bones match no known rig and no bone map is given
    (its keypoints would all be zero), else ""."""
    names = list(bone_names)
    if bone_map or detect_rig(names) != "unknown":
        return ""
    example = ", ".join(sorted(names)[:6]) or "none"
    return (f"armature {armature!r}: its bones ({example}{' ...' if len(names) > 6 else ''}) match no known rig "
            f"({KNOWN_RIGS}), so it gets no pose keypoints; map its bones with --bone-map FILE.json, e.g. "
            f'{{"{armature}": {{"l_shoulder": "<bone>", "l_elbow": "<bone>", ...}}}} '
            f"(joints: {', '.join(COCO18_NAMES)})")


def keypoints_from_projection(xy: np.ndarray, depth_z: np.ndarray, width: int, height: int) -> np.ndarray:
    """(N, 3) OpenPose keypoints [x, y, confidence] from N projected joints (18 for a body).

    xy: (N, 2) pixel coordinates (pixel centres at +0.5), depth_z: (N,) camera-space Z.
    Confidence is 1 for a joint in front of the camera (z > 0) inside [0, width) x [0, height),
    else the row is [0, 0, 0] (OpenPose's "not detected").
    """
    xy = np.asarray(xy, dtype=np.float64)
    z = np.asarray(depth_z, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2 or z.shape != (len(xy),):
        raise ValueError(f"need xy (N, 2) and depth_z (N,) (got {xy.shape} and {z.shape})")
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(xy).all(axis=1) & np.isfinite(z) & (z > 0)
        ok &= (xy[:, 0] >= 0) & (xy[:, 0] < width) & (xy[:, 1] >= 0) & (xy[:, 1] < height)
    out = np.zeros((len(xy), 3), dtype=np.float64)
    out[ok, :2] = xy[ok]
    out[ok, 2] = 1.0
    return out


def _box(centre: np.ndarray, r: float, w: int, h: int):
    x0, x1 = max(int(np.floor(centre[0] - r)), 0), min(int(np.ceil(centre[0] + r)), w)
    y0, y1 = max(int(np.floor(centre[1] - r)), 0), min(int(np.ceil(centre[1] + r)), h)
    if x0 >= x1 or y0 >= y1:
        return None
    ys, xs = np.mgrid[y0:y1, x0:x1]
    # offsets of pixel centres (+0.5) from the shape's centre
    return (slice(y0, y1), slice(x0, x1)), xs + 0.5 - centre[0], ys + 0.5 - centre[1]


def _fill_limb(canvas: np.ndarray, p0: np.ndarray, p1: np.ndarray, half_width: float, color) -> None:
    """Filled ellipse from p0 to p1 (pixel coordinates, centres at +0.5), minor semi-axis half_width."""
    d = p1 - p0
    length = float(np.hypot(*d))
    a, b = max(length / 2, 0.5), max(float(half_width), 0.5)
    box = _box((p0 + p1) / 2, a + b, canvas.shape[1], canvas.shape[0])
    if box is None:
        return
    window, px, py = box
    ux, uy = (d / length) if length > 1e-9 else (1.0, 0.0)
    along, across = px * ux + py * uy, -px * uy + py * ux
    canvas[window][(along / a) ** 2 + (across / b) ** 2 <= 1.0] = color


def _fill_disc(canvas: np.ndarray, centre: np.ndarray, radius: float, color) -> None:
    box = _box(centre, radius, canvas.shape[1], canvas.shape[0])
    if box is not None:
        window, px, py = box
        canvas[window][px**2 + py**2 <= radius**2] = color


def skeleton_sizes(width: int, height: int) -> tuple[int, int]:
    """(limb half-width, joint radius) in pixels: 4 and 4 at 512 px, scaled with the smaller side."""
    size = max(1, int(round(4 * min(width, height) / 512)))
    return size, size


def draw_skeleton(canvas: np.ndarray, keypoints: np.ndarray, limb_width: int | None = None) -> None:
    """Draw one person's COCO-18 skeleton on an (H, W, 3) uint8 canvas, in place.

    Only joints with confidence > 0 are drawn, and a limb only when both its joints are.
    limb_width: limb half-width (and joint radius) in pixels; None scales with the image.
    """
    if canvas.ndim != 3 or canvas.shape[2] != 3 or canvas.dtype != np.uint8:
        raise ValueError(f"canvas must be (H, W, 3) uint8 (got {canvas.shape} {canvas.dtype})")
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.shape != (18, 3):
        raise ValueError(f"keypoints must be (18, 3) [x, y, confidence] (got {kp.shape})")
    stick, radius = skeleton_sizes(canvas.shape[1], canvas.shape[0])
    if limb_width is not None:
        stick = radius = max(1, int(limb_width))
    seen = np.isfinite(kp).all(axis=1) & (kp[:, 2] > 0)
    for (i, j), color in zip(LIMBS, LIMB_COLORS, strict=True):
        if seen[i] and seen[j]:
            _fill_limb(canvas, kp[i, :2], kp[j, :2], stick, color)
    for i in np.flatnonzero(seen):
        _fill_disc(canvas, kp[i, :2], radius, COLORS[i])
