"""A shot bundle (docs/shot-bundle.md) as the SubmitShot request stream: the manifest first,
then every control (and mask) PNG in chunks of at most 1 MiB. No bpy.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from ..proto import render_pb2 as pb

CHUNK_BYTES = 1024 * 1024  # far below gRPC's 4 MiB default message limit

_CAMERA_MODES = {
    "auto": pb.CAMERA_MODE_AUTO,
    "preset": pb.CAMERA_MODE_PRESET,
    "trajectory": pb.CAMERA_MODE_TRAJECTORY,
    "off": pb.CAMERA_MODE_OFF,
}


def read_shot(bundle_dir: str | Path) -> dict:
    """shot.json of a finished export, with the checks a submit relies on."""
    path = Path(bundle_dir) / "shot.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: the export of this shot did not finish; export it again")
    shot = json.loads(path.read_text(encoding="utf-8"))
    schema = str(shot.get("schema", ""))
    if schema.split(".")[0] != "ltx-shot/1":
        raise ValueError(f"{path}: schema {schema!r} is not ltx-shot/1; re-export with this add-on version")
    count = int(shot["frame_end"]) - int(shot["frame_start"]) + 1
    if len(shot.get("frames", [])) != count:
        raise ValueError(f"{path}: {len(shot.get('frames', []))} camera frames for the range "
                         f"{shot['frame_start']}..{shot['frame_end']} ({count} frames); re-export the shot")
    return shot


def frame_files(bundle_dir: str | Path, shot: dict, kind: str) -> list[Path]:
    """control/NNNNNN.png or mask/NNNNNN.png for each frame of the shot ([] when the folder is absent)."""
    folder = Path(bundle_dir) / kind
    if not folder.is_dir():
        return []
    files = [folder / f"{int(f['frame']):06d}.png" for f in shot["frames"]]
    missing = [p.name for p in files if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} lacks {len(missing)} frame(s), e.g. {missing[0]}; re-export the shot")
    return files


def build_manifest(shot: dict, *, request_id: str, audio: bool = True, client_info: str = "",
                   frame_strength: Sequence[float] | None = None, strength: float | None = None,
                   num_control_frames: int = 0, has_mask: bool = False) -> pb.ShotManifest:
    """ShotManifest from shot.json. strength/frame_strength override the bundle's when given
    (the add-on samples the keyframed curve itself)."""
    num_frames = int(shot["frame_end"]) - int(shot["frame_start"]) + 1
    strength_info = shot.get("strength") or {}
    per_frame = list(frame_strength) if frame_strength is not None else list(strength_info.get("per_frame") or [])
    if per_frame and len(per_frame) != num_frames:
        raise ValueError(f"per-frame strength has {len(per_frame)} values for {num_frames} frames")
    background = strength_info.get("background")
    control = pb.ControlSettings(
        lora=str(shot.get("control_lora", "")),
        strength=float(strength if strength is not None else strength_info.get("global", 1.0)),
        frame_strength=per_frame,
        background_strength=float(background) if background is not None else 0.0,
        has_background_strength=background is not None,
    )
    camera_info = shot.get("camera") or {}
    mode_name = str(camera_info.get("mode", "auto"))
    if mode_name not in _CAMERA_MODES:
        raise ValueError(f"camera mode {mode_name!r} unknown; use one of {', '.join(_CAMERA_MODES)}")
    camera = pb.CameraSettings(
        mode=_CAMERA_MODES[mode_name],
        preset_lora=str(camera_info.get("preset_lora", "")),
        trajectory_lora=str(camera_info.get("trajectory_lora", "")),
        weight=float(camera_info.get("weight", 0.0) or 0.0),
        frames=[] if mode_name == "off" else [_camera_frame(f) for f in shot["frames"]],
    )
    return pb.ShotManifest(
        request_id=request_id,
        prompt=str(shot.get("prompt", "")),
        negative_prompt=str(shot.get("negative_prompt", "")),
        width=int(shot["width"]),
        height=int(shot["height"]),
        num_frames=num_frames,
        fps=float(shot["fps"]),
        seed=int(shot.get("seed", 0)),
        control=control,
        camera=camera,
        audio=audio,
        shot_name=str(shot.get("name", "")),
        client_info=client_info,
        control_width=int(shot.get("control_width", 0) or 0),
        control_height=int(shot.get("control_height", 0) or 0),
        frame_start=int(shot["frame_start"]),
        num_control_frames=num_control_frames,
        has_mask=has_mask,
    )


def _camera_frame(frame: dict) -> pb.CameraFrame:
    k = frame["intrinsics"]
    w2c = [float(v) for row in frame["world_to_camera"] for v in row]
    if len(w2c) != 16:
        raise ValueError(f"frame {frame.get('frame')}: world_to_camera must be 4x4 (got {len(w2c)} values)")
    return pb.CameraFrame(fx=float(k["fx"]), fy=float(k["fy"]), cx=float(k["cx"]), cy=float(k["cy"]),
                          world_to_camera=w2c, lens_mm=float(frame.get("lens_mm", 0.0)))


def submit_requests(manifest: pb.ShotManifest, control: Sequence[Path], masks: Sequence[Path],
                    chunk_bytes: int = CHUNK_BYTES,
                    on_bytes: Callable[[int, int], None] | None = None) -> Iterator[pb.SubmitShotRequest]:
    """The request stream: manifest, then control frames in order, then mask frames.

    Files are read lazily, one at a time, so a long shot never sits in memory whole.
    on_bytes(sent, total) reports upload progress in PNG bytes.
    """
    total = sum(Path(p).stat().st_size for p in (*control, *masks))
    sent = 0
    yield pb.SubmitShotRequest(manifest=manifest)
    for kind, files in ((pb.FRAME_KIND_CONTROL, control), (pb.FRAME_KIND_MASK, masks)):
        for index, path in enumerate(files):
            data = Path(path).read_bytes()
            if not data:
                raise ValueError(f"{path} is empty; re-export the shot")
            for offset in range(0, len(data), chunk_bytes):
                piece = data[offset:offset + chunk_bytes]
                yield pb.SubmitShotRequest(frame=pb.FrameChunk(
                    kind=kind, index=index, offset=offset, data=piece,
                    end_of_frame=offset + len(piece) >= len(data)))
                sent += len(piece)
                if on_bytes:
                    on_bytes(sent, total)
