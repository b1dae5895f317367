"""COCO-18 from rigs (Rigify, Mixamo, Unreal, CC, Biped), projection, OpenPose JSON, drawing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from blender_addon.core.openpose import (
    COCO18_NAMES,
    COLORS,
    LIMB_COLORS,
    LIMBS,
    coco18_world_joints,
    detect_rig,
    draw_skeleton,
    keypoints_from_projection,
    openpose_json,
    people_from_openpose_json,
)

I = {n: i for i, n in enumerate(COCO18_NAMES)}  # noqa: E741


def _sides(template: str, parts: list[str]) -> list[str]:
    return [template.format(part=p, s=s, S=s.upper(), side=side)
            for p in parts for s, side in (("l", "Left"), ("r", "Right"))]  # fmt: skip


RIGIFY = ["root", "torso", "head", "neck", "DEF-spine", "DEF-spine.001", "DEF-spine.004", "DEF-spine.006",
          "ORG-eye.L", "ORG-eye.R", "ORG-nose.002"] + [
    f"{pre}{b}.{s}" for pre in ("DEF-", "ORG-", "") for b in ("upper_arm", "forearm", "hand", "thigh", "shin", "foot")
    for s in "LR"] + ["upper_arm_fk.L", "hand_ik.L", "DEF-upper_arm.L.001"]  # fmt: skip
MIXAMO_PARTS = ["Arm", "ForeArm", "Hand", "UpLeg", "Leg", "Foot", "Shoulder", "ToeBase"]
MIXAMO = ["mixamorig:Hips", "mixamorig:Spine", "mixamorig:Neck", "mixamorig:Head", "mixamorig:HeadTop_End"] + [
    f"mixamorig:{side}{p}" for p in MIXAMO_PARTS for side in ("Left", "Right")]  # fmt: skip
UNREAL = ["root", "pelvis", "spine_01", "neck_01", "head"] + _sides(
    "{part}_{s}", ["clavicle", "upperarm", "lowerarm", "hand", "thigh", "calf", "foot", "ball"])
CC = ["CC_Base_BoneRoot", "CC_Base_Hip", "CC_Base_Head", "CC_Base_NeckTwist01"] + _sides(
    "CC_Base_{S}_{part}", ["Clavicle", "Upperarm", "Forearm", "Hand", "Thigh", "Calf", "Foot", "Eye"])
BIPED = ["Bip01", "Bip01 Pelvis", "Bip01 Spine", "Bip01 Neck", "Bip01 Head"] + _sides(
    "Bip01 {S} {part}", ["Clavicle", "UpperArm", "Forearm", "Hand", "Thigh", "Calf", "Foot"])


@pytest.mark.parametrize("names,rig", [(RIGIFY, "rigify"), (MIXAMO, "mixamo"), (UNREAL, "unreal"),
                                       (CC, "cc"), (BIPED, "biped")])  # fmt: skip
def test_detect_rig_from_bone_names(names, rig):
    assert detect_rig(names) == rig


@pytest.mark.parametrize("prefix", ["mixamorig:", "mixamorig1:", "mixamorig_", "", "Armature|mixamorig:",
                                    "Hero:mixamorig:"])  # fmt: skip
def test_mixamo_detected_with_any_prefix(prefix):
    names = [n.replace("mixamorig:", prefix) for n in MIXAMO]
    assert detect_rig(names) == "mixamo"
    heads = {n: (float(i), 0.0, 1.0) for i, n in enumerate(names)}
    joints = coco18_world_joints(heads, heads)
    assert joints[I["l_elbow"], 0] == names.index(f"{prefix}LeftForeArm")


def test_biped_max_naming_and_unknown_rig():
    assert detect_rig([n.replace("Bip01", "Bip001") for n in BIPED]) == "biped"
    assert detect_rig(["Bone", "Bone.001", "Bone.002", "head"]) == "unknown"


def _mixamo_tpose() -> tuple[dict, dict]:
    """Blender world, metres: character faces -Y, its left is +X, up is +Z."""
    heads = {
        "mixamorig:Head": (0, 0, 1.55), "mixamorig:Neck": (0, 0, 1.45),
        "mixamorig:LeftArm": (0.2, 0, 1.42), "mixamorig:LeftForeArm": (0.48, 0, 1.42),
        "mixamorig:LeftHand": (0.74, 0, 1.42), "mixamorig:RightArm": (-0.2, 0, 1.42),
        "mixamorig:RightForeArm": (-0.48, 0, 1.42), "mixamorig:RightHand": (-0.74, 0, 1.42),
        "mixamorig:LeftUpLeg": (0.1, 0, 0.95), "mixamorig:LeftLeg": (0.1, 0, 0.5),
        "mixamorig:LeftFoot": (0.1, 0, 0.08), "mixamorig:RightUpLeg": (-0.1, 0, 0.95),
        "mixamorig:RightLeg": (-0.1, 0, 0.5), "mixamorig:RightFoot": (-0.1, 0, 0.08),
    }  # fmt: skip
    tails = dict(heads)
    tails["mixamorig:Head"] = (0, 0, 1.75)
    return heads, tails


def test_mixamo_crown_comes_from_headtop_end_not_the_head_tail():
    heads, tails = _mixamo_tpose()
    heads["mixamorig:HeadTop_End"] = tails["mixamorig:HeadTop_End"] = (0, 0, 1.75)
    tails["mixamorig:Head"] = (0, 0.3, 1.55)  # an FBX import without bone orientation: tail points back
    np.testing.assert_allclose(coco18_world_joints(heads, tails), coco18_world_joints(*_mixamo_tpose()))


def test_joints_are_bone_heads_and_neck_is_shoulder_midpoint():
    heads, tails = _mixamo_tpose()
    joints = coco18_world_joints(heads, tails)
    np.testing.assert_allclose(joints[I["l_shoulder"]], [0.2, 0, 1.42])
    np.testing.assert_allclose(joints[I["r_elbow"]], [-0.48, 0, 1.42])
    np.testing.assert_allclose(joints[I["l_wrist"]], [0.74, 0, 1.42])
    np.testing.assert_allclose(joints[I["r_knee"]], [-0.1, 0, 0.5])
    np.testing.assert_allclose(joints[I["l_ankle"]], [0.1, 0, 0.08])
    np.testing.assert_allclose(joints[I["neck"]], [0, 0, 1.42])  # not the Neck bone (1.45)


def test_face_estimated_in_front_of_the_head_bone():
    heads, tails = _mixamo_tpose()
    joints = coco18_world_joints(heads, tails)
    nose, l_eye, r_eye, l_ear, r_ear = (joints[I[n]] for n in ("nose", "l_eye", "r_eye", "l_ear", "r_ear"))
    assert nose[1] < -0.08  # the character faces -Y
    assert 1.55 < nose[2] < 1.75 and abs(nose[0]) < 1e-9
    assert l_eye[0] > 0 > r_eye[0] and l_ear[0] > l_eye[0]  # character's left is +X
    assert np.linalg.norm(l_eye - r_eye) == pytest.approx(0.064, abs=0.01)
    off = coco18_world_joints(heads, tails, estimate_face=False)
    assert np.isnan(off[I["nose"]]).all() and np.isnan(off[I["l_ear"]]).all()


def test_rigify_prefers_def_bones_and_face_bones():
    heads = {n: (0.0, 0.0, 0.0) for n in RIGIFY}
    heads.update({"DEF-forearm.L": (1.0, 2.0, 3.0), "ORG-forearm.L": (9.0, 9, 9), "ORG-eye.L": (0.03, -0.1, 1.6)})
    joints = coco18_world_joints(heads, heads)
    np.testing.assert_allclose(joints[I["l_elbow"]], [1, 2, 3])
    np.testing.assert_allclose(joints[I["l_eye"]], [0.03, -0.1, 1.6])  # from the face bone, not estimated


def test_manual_map_with_tail_and_clear_errors():
    heads = {"arm": (0, 0, 1), "fore": (0.3, 0, 1)}
    tails = {"arm": (0.3, 0, 1), "fore": (0.6, 0, 1)}
    joints = coco18_world_joints(heads, tails, manual_map={"l_elbow": "arm:tail", "l_wrist": "fore:tail"})
    np.testing.assert_allclose(joints[I["l_elbow"]], [0.3, 0, 1])
    np.testing.assert_allclose(joints[I["l_wrist"]], [0.6, 0, 1])
    assert np.isnan(joints[I["nose"]]).all()
    with pytest.raises(ValueError, match="not a COCO-18 joint"):
        coco18_world_joints(heads, tails, manual_map={"left_elbow": "arm"})
    with pytest.raises(ValueError, match="no such bone"):
        coco18_world_joints(heads, tails, manual_map={"l_elbow": "forearm"})


def test_keypoint_visibility():
    xy = np.tile([[100.0, 50.0]], (18, 1))
    z = np.ones(18)
    xy[1] = [np.nan, 5]  # missing joint
    z[2] = -1.0  # behind the camera
    xy[3] = [640.0, 10]  # x == width is outside
    xy[4] = [-0.1, 10]
    xy[5] = [0.0, 359.9]  # inside: first column, last row
    kp = keypoints_from_projection(xy, z, 640, 360)
    assert kp[:, 2].tolist() == [1, 0, 0, 0, 0] + [1] * 13
    assert kp[1].tolist() == [0, 0, 0] and kp[5].tolist() == [0.0, 359.9, 1.0]


def test_openpose_json_round_trip():
    rng = np.random.default_rng(3)
    people = [rng.uniform(0, 500, (18, 3)), np.zeros((18, 3))]
    doc = json.loads(json.dumps(openpose_json(people, 768, 512)))
    assert doc["version"] == 1.3 and len(doc["people"][0]["pose_keypoints_2d"]) == 54
    assert doc["canvas_width"] == 768
    back = people_from_openpose_json(doc)
    assert len(back) == 2 and all(np.array_equal(a, b) for a, b in zip(back, people, strict=True))
    assert people_from_openpose_json(openpose_json([])) == []
    with pytest.raises(ValueError, match="54 numbers"):
        people_from_openpose_json({"people": [{"pose_keypoints_2d": [1, 2, 3]}]})


def _standing_person(scale=1.0) -> np.ndarray:
    pts = {"nose": (256, 90), "neck": (256, 140), "r_shoulder": (206, 140), "r_elbow": (190, 210),
           "r_wrist": (180, 280), "l_shoulder": (306, 140), "l_elbow": (322, 210), "l_wrist": (332, 280),
           "r_hip": (226, 290), "r_knee": (222, 380), "r_ankle": (220, 470), "l_hip": (286, 290),
           "l_knee": (290, 380), "l_ankle": (292, 470), "r_eye": (246, 80), "l_eye": (266, 80),
           "r_ear": (232, 88), "l_ear": (280, 88)}  # fmt: skip
    kp = np.ones((18, 3))
    kp[:, :2] = np.array([pts[n] for n in COCO18_NAMES]) * scale + 0.5
    return kp


def test_skeleton_colours_at_limb_midpoints_and_joints():
    canvas = np.zeros((512, 512, 3), dtype=np.uint8)
    kp = _standing_person()
    draw_skeleton(canvas, kp)
    for k, (a, b) in enumerate(LIMBS):
        mid = (kp[a, :2] + kp[b, :2]) / 2
        if np.linalg.norm(kp[a, :2] - kp[b, :2]) > 30:  # short face limbs are hidden under joints
            assert canvas[int(mid[1]), int(mid[0])].tolist() == LIMB_COLORS[k].tolist(), COCO18_NAMES[a]
    for j in range(18):
        assert canvas[int(kp[j, 1]), int(kp[j, 0])].tolist() == COLORS[j].tolist(), COCO18_NAMES[j]
    # stick half-width 4 at 512 px: 3 px off the upper-arm axis is coloured, 6 px is not
    y = int((kp[I["l_elbow"], 1] + kp[I["l_shoulder"], 1]) / 2)
    mid_x = (kp[I["l_shoulder"], 0] + kp[I["l_elbow"], 0]) / 2
    assert canvas[y, int(mid_x + 3)].any() and not canvas[y, int(mid_x + 7)].any()


def test_invisible_joints_and_their_limbs_are_not_drawn():
    canvas = np.zeros((512, 512, 3), dtype=np.uint8)
    kp = _standing_person()
    kp[I["l_wrist"], 2] = 0
    draw_skeleton(canvas, kp)
    wrist = kp[I["l_wrist"]]
    assert not canvas[int(wrist[1]), int(wrist[0])].any()
    elbow = kp[I["l_elbow"]]
    mid = (elbow[:2] + wrist[:2]) / 2
    assert not canvas[int(mid[1]), int(mid[0])].any()


def test_sizes_scale_with_image_and_off_canvas_is_safe():
    big = np.zeros((1024, 1024, 3), dtype=np.uint8)
    draw_skeleton(big, _standing_person(2.0))
    small = np.zeros((512, 512, 3), dtype=np.uint8)
    draw_skeleton(small, _standing_person())
    ratio = big.any(axis=2).sum() / small.any(axis=2).sum()
    assert 3.5 < ratio < 4.5  # area scales with the square of the image size
    edge = np.zeros((64, 64, 3), dtype=np.uint8)
    kp = _standing_person(0.25) + [[-60, -20, 0]]
    draw_skeleton(edge, kp, limb_width=2)  # partly off the canvas: clipped, no error
    assert edge.any()
    with pytest.raises(ValueError, match="uint8"):
        draw_skeleton(np.zeros((8, 8, 3), np.float32), kp)


def test_mixamo_tpose_seen_from_the_front_end_to_end(tmp_path):
    """World joints -> OpenCV projection -> keypoints -> drawn canvas, as the gather layer chains them."""
    from blender_addon.core.canvas import compose_control

    heads, tails = _mixamo_tpose()
    world = coco18_world_joints(heads, tails)
    # Camera 4 m in front of the character (at -Y) looking at +Y: x_cam = X, y_cam = -Z, z_cam = Y.
    w2c = np.array([[1, 0, 0, 0], [0, 0, -1, 1.2], [0, 1, 0, 4.0], [0, 0, 0, 1]], dtype=float)
    cam = (np.c_[world, np.ones(18)] @ w2c.T)[:, :3]
    fx = cx = 256.0
    xy = np.stack([fx * cam[:, 0] / cam[:, 2] + cx, fx * cam[:, 1] / cam[:, 2] + cx], axis=1)
    kp = keypoints_from_projection(xy, cam[:, 2], 512, 512)
    assert kp[:, 2].all()  # everything visible
    assert kp[I["l_shoulder"], 0] > kp[I["r_shoulder"], 0]  # facing the camera: its left on image right
    assert kp[I["nose"], 1] < kp[I["neck"], 1] < kp[I["l_hip"], 1] < kp[I["l_ankle"], 1]
    depth = np.full((512, 512), 1e10)
    depth[100:480, 150:362] = 4.0
    canvas = compose_control(depth, depth < 1e9, 3.0, 6.0, [kp])
    wrist = kp[I["l_wrist"]]
    assert canvas[int(wrist[1]), int(wrist[0])].tolist() == COLORS[I["l_wrist"]].tolist()
    from blender_addon.core.png import write_png

    write_png(tmp_path / "tpose.png", canvas)


def test_bone_map_documents_are_validated_with_the_joint_names():
    from blender_addon.core.openpose import bone_map_for, parse_bone_maps

    maps = parse_bone_maps({"Hero": {"l_wrist": " hand_L ", "neck": "spine_top:tail"}, "*": {"nose": "snout"}})
    assert maps == {"Hero": {"l_wrist": "hand_L", "neck": "spine_top:tail"}, "*": {"nose": "snout"}}
    assert bone_map_for(maps, "Hero")["l_wrist"] == "hand_L"
    assert bone_map_for(maps, "Villain") == {"nose": "snout"}  # "*" covers the rest
    assert bone_map_for({}, "Hero") is None
    with pytest.raises(ValueError, match=r"'left_wrist' not COCO-18 joint name\(s\); use: nose, neck, r_shoulder, "
                                         r"r_elbow, r_wrist, l_shoulder, .*, l_ear$"):
        parse_bone_maps({"Hero": {"left_wrist": "hand_L"}})
    for bad, match in (([], "must be a JSON object"), ({"Hero": []}, r"\['Hero'\] must be an object"),
                       ({"Hero": {"l_wrist": 3}}, r"\['Hero'\]\['l_wrist'\] must be a bone name")):
        with pytest.raises(ValueError, match=match):
            parse_bone_maps(bad)


def test_bone_map_bones_are_checked_before_export():
    from blender_addon.core.openpose import check_bone_map

    bones = ["root", "Hand.L", "mixamorig:Spine"]
    check_bone_map("Hero", {"l_wrist": "Hand.L:tail", "neck": "Spine"}, bones)  # tail and prefix-free names work
    with pytest.raises(ValueError, match=r"armature 'Hero': no bone for l_wrist='Paw.L'; its bones are Hand.L,"):
        check_bone_map("Hero", {"l_wrist": "Paw.L", "neck": "Spine"}, bones)


def test_an_unknown_rig_without_a_map_gets_a_warning_that_says_what_to_do():
    from blender_addon.core.openpose import unmapped_rig_warning

    bones = ["Bone", "Bone.001", "Bone.002"]
    message = unmapped_rig_warning("Robot", bones, None)
    assert "armature 'Robot'" in message and "Bone, Bone.001" in message
    assert "Rigify, Mixamo, Unreal, CC, Biped" in message and "--bone-map FILE.json" in message
    assert '{"Robot": {"l_shoulder": "<bone>"' in message
    assert unmapped_rig_warning("Robot", bones, {"l_wrist": "Bone"}) == ""
    assert unmapped_rig_warning("Hero", MIXAMO, None) == ""
    # Without a map such a rig really has no keypoints: the warning is not a false alarm.
    heads = {n: (0.0, 0.0, float(i)) for i, n in enumerate(bones)}
    assert np.isnan(coco18_world_joints(heads, heads)).all()
