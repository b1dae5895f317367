"""Rendering a shot bundle offline (`render-backend render BUNDLE`): the bundle goes through the
same doors as an uploaded shot.

shot.json -> `shot_bundle.to_manifest` (the function the add-on's uploader uses) -> the
server's `manifest_to_request` -> the engine's one check -> render. So the same bundle rendered
offline and through a server gives the same request, and the same video for the same seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .engine.request import RenderRequest
from .proto import render_pb2 as pb
from .server.convert import manifest_to_request
from .server.upload import decode_png
from .shot_bundle import (
    BundleError,
    Shot,
    canvas_paths,
    condition_paths,
    mask_paths,
    missing_files,
    read_shot,
    to_manifest,
)


@dataclass
class ShotBundle:
    path: Path
    shot: Shot
    manifest: pb.ShotManifest


def read_bundle(path: str | Path) -> ShotBundle:
    """shot.json of a finished export (every canvas file present) and its manifest."""
    path = Path(path)
    shot = read_shot(path)
    missing = missing_files(path, shot)
    if missing:
        raise BundleError(f"{path}: missing files: {missing}; export the shot again")
    return ShotBundle(path, shot, to_manifest(shot))


def bundle_request(bundle: ShotBundle) -> RenderRequest:
    """The engine request with every canvas and mask decoded (the sizes the manifest announces)."""
    frames, masks = [], []
    for i, control in enumerate(bundle.shot.controls):
        canvases = [_decode(p, "RGB") for p in canvas_paths(bundle.path, bundle.shot, control)]
        for p, c in zip(canvas_paths(bundle.path, bundle.shot, control), canvases, strict=True):
            if (c.shape[1], c.shape[0]) != (control.width, control.height):
                raise BundleError(f"{p} is {c.shape[1]}x{c.shape[0]}; shot.json says controls[{i}] is "
                                  f"{control.width}x{control.height}; export the shot again")
        frames.append(np.stack(canvases))
        paths = mask_paths(bundle.path, bundle.shot, control)
        masks.append([_decode(p, "L") >= 128 for p in paths] if paths else None)
    conditions = [np.stack([_decode(p, "RGB") for p in condition_paths(bundle.path, bundle.shot, c)])
                  for c in bundle.shot.conditions]
    return manifest_to_request(bundle.manifest, frames, masks, conditions)


def _decode(path: Path, mode: str) -> np.ndarray:
    from PIL import UnidentifiedImageError

    try:
        return decode_png(path, mode)
    except (UnidentifiedImageError, OSError) as e:
        raise BundleError(f"{path} does not decode as a PNG ({e}); export the shot again") from None
