"""Hand keypoints from the finger bones of Rigify, Mixamo, Unreal, CC and Biped rigs; face landmarks
only from bones the rig really has; warnings that say what is missing; bone-map keys."""

from __future__ import annotations

import numpy as np
import pytest

from blender_addon.core.hand_face import HAND_EDGES, face_world_points, hand_face_warnings, hand_world_points
from blender_addon.core.openpose import FINGERS, HAND21_NAMES, coco18_world_joints, parse_bone_maps

WRISTS = np.array([[0.7, 0.0, 1.0], [-0.7, 0.0, 1.0]])


def _finger_bones(names: dict[str, list[str]], end_bone: bool = False) -> tuple[dict, dict]:
    """Bones along +x (left) / -x (right) from each wrist: finger f at height z = 1 + 0.01 f, joint k
    at 0.05 (k + 1) from the wrist; heads and tails in metres."""
    heads, tails = {}, {}
    for side, sign in (("l", 1), ("r", -1)):
        for f, finger in enumerate(FINGERS):
            chain = names[f"{side}_{finger}"]
            for k, bone in enumerate(chain):
                heads[bone] = (sign * (0.7 + 0.05 * (k + 1)), 0.0, 1.0 + 0.01 * f)
                tails[bone] = (sign * (0.7 + 0.05 * (k + 2)), 0.0, 1.0 + 0.01 * f)
    return heads, tails


def _rig_names(rig: str) -> dict[str, list[str]]:
    out = {}
    for side in "lr":
        S, Side = side.upper(), ("Left" if side == "l" else "Right")
        for n, finger in enumerate(FINGERS):
            if rig == "rigify":
                base = "thumb" if finger == "thumb" else f"f_{finger}"
                chain = [f"DEF-{base}.0{i}.{S}" for i in (1, 2, 3)]
            elif rig == "mixamo":
                chain = [f"mixamorig:{Side}Hand{finger.title()}{i}" for i in (1, 2, 3, 4)]
            elif rig == "unreal":
                chain = [f"{finger}_0{i}_{side}" for i in (1, 2, 3)]
            elif rig == "cc":
                cc = {"middle": "Mid"}.get(finger, finger.title())
                chain = [f"CC_Base_{S}_{cc}{i}" for i in (1, 2, 3)]
            else:
                chain = [f"Bip01 {S} Finger{n}", f"Bip01 {S} Finger{n}1", f"Bip01 {S} Finger{n}2"]
            out[f"{side}_{finger}"] = chain
    return out


@pytest.mark.parametrize("rig", ["rigify", "mixamo", "unreal", "cc", "biped"])
def test_hands_follow_openpose_order_from_each_rig_family(rig):
    heads, tails = _finger_bones(_rig_names(rig))
    hands = hand_world_points(heads, tails, WRISTS, rig=rig)
    assert hands.shape == (2, 21, 3) and np.isfinite(hands).all()
    np.testing.assert_allclose(hands[:, 0], WRISTS)
    for f in range(5):
        for k in range(4):  # 3 heads then the last tail (Mixamo: the 4th, end bone's head): 0.05 (k + 1)
            np.testing.assert_allclose(hands[0, 1 + 4 * f + k], (0.7 + 0.05 * (k + 1), 0.0, 1.0 + 0.01 * f))
            np.testing.assert_allclose(hands[1, 1 + 4 * f + k], (-0.7 - 0.05 * (k + 1), 0.0, 1.0 + 0.01 * f))


def test_hand_topology_is_openposes():
    assert len(HAND_EDGES) == 20 and HAND_EDGES[:5] == ((0, 1), (1, 2), (2, 3), (3, 4), (0, 5))
    assert HAND21_NAMES[5] == "index_1" and HAND21_NAMES[20] == "pinky_4"


def test_a_rig_without_fingers_has_no_hands_and_says_so():
    body_only = {"DEF-upper_arm.L": (0, 0, 1), "DEF-hand.L": (0.5, 0, 1)}
    assert hand_world_points(body_only, body_only, WRISTS, rig="rigify") is None
    warnings = hand_face_warnings("Hero", body_only, None, hands=True, face=False)
    assert len(warnings) == 1 and "armature 'Hero': no finger bones found" in warnings[0]
    assert "--bone-map" in warnings[0] and "l_thumb_1 .. r_pinky_4" in warnings[0]
    assert hand_face_warnings("Hero", body_only, None, hands=False, face=False) == []


def test_a_bone_map_gives_hand_points_to_a_custom_rig():
    heads = {"palm_a": (1.0, 0, 1), "tip_a": (1.2, 0, 1)}
    tails = {"palm_a": (1.1, 0, 1), "tip_a": (1.3, 0, 1)}
    hands = hand_world_points(heads, tails, WRISTS, manual_map={"l_index_1": "palm_a", "l_index_4": "tip_a:tail"})
    np.testing.assert_allclose(hands[0, 5], (1.0, 0, 1))
    np.testing.assert_allclose(hands[0, 8], (1.3, 0, 1))
    assert np.isnan(hands[0, 6]).all() and np.isnan(hands[1, 1:]).all()


def test_face_only_from_landmark_bones_never_guessed():
    rigify_face = {n: (0, 0, 1.6) for n in ("DEF-spine.006", "lip.T.L", "brow.B.L", "jaw", "chin", "nose")}
    assert face_world_points(rigify_face, rigify_face) is None
    warnings = hand_face_warnings("Hero", rigify_face, None, hands=False, face=True)
    assert len(warnings) == 1 and "no face landmark bones, so no face is drawn" in warnings[0]
    named = {f"Face.{i:02d}": (0.01 * i, 0, 1.6) for i in range(68)}
    face = face_world_points(named, named)
    assert face.shape == (68, 3) and face[67, 0] == pytest.approx(0.67)
    mapped = face_world_points({"lm_x": (1, 2, 3)}, {"lm_x": (4, 5, 6)}, manual_map={"face_30": "lm_x:tail"})
    assert tuple(mapped[30]) == (4, 5, 6) and np.isnan(mapped[:30]).all()
    assert hand_face_warnings("Hero", named, None, hands=False, face=True) == []


def test_bone_maps_accept_hand_and_face_keys_and_the_body_ignores_them():
    maps = parse_bone_maps({"Hero": {"l_wrist": "hand", "l_index_2": "idx2", "face_8": "chin"}})
    heads = {"hand": (0, 0, 1), "idx2": (1, 0, 1), "chin": (0, 0, 2)}
    joints = coco18_world_joints(heads, heads, manual_map=maps["Hero"])
    assert tuple(joints[7]) == (0, 0, 1)  # l_wrist
    with pytest.raises(ValueError, match=r"hands: l_thumb_1 .. r_pinky_4.*'l_index_9' not COCO-18 joint name\(s\)"):
        parse_bone_maps({"Hero": {"l_index_9": "x"}})
