"""A shot bundle (docs/shot-bundle.md) as the SubmitShot request stream: a pure function of the
bundle folder. The manifest first (shot_bundle.to_manifest), then for each control its canvas and
mask PNGs in chunks of at most 1 MiB. No bpy.

Nothing is sampled from the scene here: the strength curve, audio switch and LoRA names are what
the export wrote, so uploading the same folder again (Resume, `cli submit`) sends the same shot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..proto import render_pb2 as pb
from ..shot_bundle import (
    BundleError,
    Shot,
    canvas_paths,
    condition_paths,
    mask_paths,
    missing_files,
    read_shot,
    to_manifest,
)

CHUNK_BYTES = 1024 * 1024  # far below gRPC's 4 MiB default message limit


@dataclass
class Upload:
    """What one submit sends: the manifest and, per control, its canvas and mask files."""

    shot: Shot
    manifest: pb.ShotManifest
    files: list[tuple[list[Path], list[Path]]]  # per control: (canvases, masks), frame order
    conditions: list[list[Path]]  # per frame condition: its PNGs, frame order

    @property
    def total_bytes(self) -> int:
        return (sum(p.stat().st_size for canvases, masks in self.files for p in (*canvases, *masks))
                + sum(p.stat().st_size for paths in self.conditions for p in paths))


def prepare_upload(bundle_dir: str | Path, *, request_id: str, client_info: str = "") -> Upload:
    """Read a finished bundle and plan its upload; BundleError when the export is incomplete."""
    shot = read_shot(bundle_dir)
    missing = missing_files(bundle_dir, shot)
    if missing:
        raise BundleError(f"{bundle_dir}: missing files: {missing}; export the shot again")
    files = [(canvas_paths(bundle_dir, shot, c), mask_paths(bundle_dir, shot, c)) for c in shot.controls]
    conditions = [condition_paths(bundle_dir, shot, c) for c in shot.conditions]
    return Upload(shot, to_manifest(shot, request_id=request_id, client_info=client_info), files, conditions)


def submit_requests(upload: Upload, chunk_bytes: int = CHUNK_BYTES,
                    on_bytes: Callable[[int, int], None] | None = None) -> Iterator[pb.SubmitShotRequest]:
    """The request stream: manifest, then each control's canvas frames in order, then its masks, then
    each frame condition's frames.

    Files are read lazily, one at a time, so a long shot never sits in memory whole.
    on_bytes(sent, total) reports upload progress in PNG bytes.
    """
    total = upload.total_bytes
    sent = 0
    yield pb.SubmitShotRequest(manifest=upload.manifest)
    streams = [(control, kind, files) for control, (canvases, masks) in enumerate(upload.files)
               for kind, files in ((pb.FRAME_KIND_CONTROL, canvases), (pb.FRAME_KIND_MASK, masks))]
    streams += [(index, pb.FRAME_KIND_CONDITION, files) for index, files in enumerate(upload.conditions)]
    for control, kind, files in streams:  # one stream: a control's canvases or masks, or a condition's frames
        for index, path in enumerate(files):
            data = Path(path).read_bytes()
            if not data:
                raise BundleError(f"{path} is empty; export the shot again")
            for offset in range(0, len(data), chunk_bytes):
                piece = data[offset:offset + chunk_bytes]
                yield pb.SubmitShotRequest(frame=pb.FrameChunk(
                    kind=kind, index=index, offset=offset, data=piece, control=control,
                    end_of_frame=offset + len(piece) >= len(data)))
                sent += len(piece)
                if on_bytes:
                    on_bytes(sent, total)
