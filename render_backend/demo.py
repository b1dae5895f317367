"""Backend-only demo (`python -m render_backend.demo`): a synthetic shot, no Blender needed.

`./dev demo` (scripts/demo.py) is the main job with a real Blender scene; this one checks a
backend on its own, and its `synthetic_shot` feeds the server tests.

Makes the tiny model if missing (./.cache/test-model), starts the gRPC server on a free
loopback port, submits a 25-frame control canvas of moving shapes with a dolly-in camera
track, prints the job's events, fetches mp4 + wav + sidecar into ./out/ (sha256 checked)
and prints their paths. The tiny model is random: its output is noise, by design.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

from .proto import render_pb2 as pb


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def synthetic_canvas(num_frames: int, width: int, height: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Control canvases (uint8 RGB) and masks (uint8 grey, 255 inside) of a bright disc moving
    left to right in front of a dimmer square: what a masked inverse-depth canvas looks like."""
    yy, xx = np.mgrid[0:height, 0:width] + 0.5
    canvases, masks = [], []
    for i in range(num_frames):
        t = i / max(1, num_frames - 1)
        disc = (xx - (0.2 + 0.6 * t) * width) ** 2 + (yy - 0.55 * height) ** 2 < (0.18 * height) ** 2
        square = (abs(xx - 0.7 * width) < 0.12 * width) & (abs(yy - (0.35 + 0.1 * t) * height) < 0.12 * height)
        depth = np.zeros((height, width), np.uint8)
        depth[square] = 110
        depth[disc] = 230  # nearer = brighter
        canvases.append(np.repeat(depth[..., None], 3, axis=2))
        masks.append(np.where(disc | square, 255, 0).astype(np.uint8))
    return canvases, masks


def dolly_in_track(num_frames: int, width: int, height: int, metres: float = 1.0) -> list[pb.CameraFrame]:
    """A camera moving `metres` forward (+z, OpenCV) over the shot, 35 mm-ish focal length."""
    f = 1.2 * width
    frames = []
    for i in range(num_frames):
        w2c = np.eye(4)
        w2c[2, 3] = -metres * i / max(1, num_frames - 1)  # camera centre moves to +z
        frames.append(pb.CameraFrame(fx=f, fy=f, cx=width / 2, cy=height / 2,
                                     world_to_camera=w2c.ravel().tolist(), lens_mm=35.0))
    return frames


def synthetic_shot(num_frames: int = 25, width: int = 64, height: int = 64, steps: int = 2,
                   control_lora: str = "control", with_mask: bool = True, camera: bool = True,
                   **manifest_fields) -> tuple[pb.ShotManifest, list[bytes], list[bytes]]:
    """(manifest, control PNGs, mask PNGs) for a small synthetic shot."""
    canvases, masks = synthetic_canvas(num_frames, width, height)
    m = pb.ShotManifest(
        request_id=uuid.uuid4().hex, prompt="a red ball rolls past a grey box, soft daylight, footsteps",
        width=width, height=height, num_frames=num_frames, fps=24.0, seed=7, num_inference_steps=steps,
        audio=True, shot_name="demo_shot", client_info="render_backend.demo",
        camera=pb.CameraSettings(mode=pb.CAMERA_MODE_AUTO if camera else pb.CAMERA_MODE_OFF,
                                 frames=dolly_in_track(num_frames, width, height) if camera else []))
    if control_lora:
        control = m.controls.add(kind="depth+pose", lora=control_lora, strength=1.0, width=width, height=height,
                                 num_frames=num_frames, has_mask=with_mask)
        if with_mask:
            control.background_strength = 0.3
    for key, value in manifest_fields.items():
        setattr(m, key, value)
    controls = [png_bytes(c) for c in canvases] if control_lora else []
    mask_pngs = [png_bytes(k) for k in masks] if control_lora and with_mask else []
    return m, controls, mask_pngs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m render_backend.demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="model folder (default: the tiny test model in ./.cache/test-model)")
    ap.add_argument("--out", default="out", help="where the mp4/wav/json go (default ./out)")
    ap.add_argument("--frames", type=int, default=25)
    ap.add_argument("--size", type=int, nargs=2, default=(64, 64), metavar=("WIDTH", "HEIGHT"))
    args = ap.parse_args(argv)

    import torch

    from .cli import lora_dir_map
    from .client import ARTIFACT_SUFFIX, ServiceClient
    from .engine.ltx2.engine import LTX2Engine
    from .engine.ltx2.test_model import make_test_model
    from .server.app import BackgroundServer
    from .server.config import ServerConfig

    torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
    tiny = args.model is None
    model = Path(args.model) if args.model else make_test_model(Path(".cache/test-model"))
    print(f"==> model: {model}")
    engine = LTX2Engine(str(model), loras=lora_dir_map(model / "loras") if (model / "loras").is_dir() else None)
    data_dir = Path(tempfile.mkdtemp(prefix="ltx-render-demo-"))
    server = BackgroundServer(engine, ServerConfig(host="127.0.0.1", port=0, data_dir=data_dir, heartbeat_s=5))
    with server:
        print(f"==> server on {server.address} (data dir {data_dir})")
        with ServiceClient(server.address) as client:
            t0 = time.monotonic()
            while client.health() != "SERVING":
                time.sleep(0.1)
            print(f"==> model loaded in {time.monotonic() - t0:.1f} s")
            caps = client.capabilities()
            print(f"==> {caps.model_variant or caps.model_id} on {caps.device}; LoRAs: "
                  + ", ".join(lo.name for lo in caps.loras))
            manifest, controls, masks = synthetic_shot(args.frames, *args.size)
            job = client.submit(manifest, controls, masks)
            print(f"==> submitted job {job.job_id} ({len(controls)} control + {len(masks)} mask frames)")
            for w in job.warnings:
                print(f"    warning: {w}")
            final = client.wait(job.job_id, on_event=_print_event)
            if final.state != pb.JOB_STATE_DONE:
                print(f"!! job ended {pb.JobState.Name(final.state)}: {final.message}", file=sys.stderr)
                return 1
            out = Path(args.out)
            for art in final.artifacts:
                path = client.fetch(job.job_id, art.kind, out / f"{manifest.shot_name}{ARTIFACT_SUFFIX[art.kind]}")
                print(f"==> {path}  ({art.size} bytes, sha256 {art.sha256[:12]}… verified)")
    if tiny:
        print("\n" + "!" * 78)
        print("!! The tiny test model has RANDOM weights: the video and audio above are NOISE.")
        print("!! For real output, serve real LTX-2 weights on a GPU box:")
        print("!!   render-backend serve --model Lightricks/LTX-2 --lora-dir LORAS --host 0.0.0.0 \\")
        print("!!       --token-file TOKEN --tls-cert cert.pem --tls-key key.pem")
        print("!! or render a bundle offline: render-backend render BUNDLE --out DIR --model PATH")
        print("!" * 78)
    return 0


def _print_event(ev: pb.JobEvent) -> None:
    state = pb.JobState.Name(ev.state).removeprefix("JOB_STATE_").lower()
    parts = [f"[{state}]", ev.stage]
    if ev.total_steps:
        parts.append(f"step {ev.step}/{ev.total_steps}")
    if ev.queue_position:
        parts.append(f"queue #{ev.queue_position}")
    parts.append(f"{ev.progress * 100:3.0f}%")
    if ev.eta_seconds >= 0:
        parts.append(f"eta {ev.eta_seconds:.1f} s")
    if ev.camera_move:
        parts.append(f"camera: {ev.camera_move}")
    if ev.heartbeat:
        parts.append("(heartbeat)")
    if ev.message and ev.state in (pb.JOB_STATE_FAILED, pb.JOB_STATE_CANCELLED):
        parts.append(ev.message)
    print("    " + "  ".join(p for p in parts if p))


if __name__ == "__main__":
    sys.exit(main())
