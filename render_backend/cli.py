"""`render-backend`: serve the gRPC API, render a shot bundle offline, or write the tiny test model.

    render-backend serve --model PATH_OR_HUB_ID [--host 127.0.0.1] [--port 50051] [--data-dir DIR]
                         [--token-file F] [--tls-cert C --tls-key K] [--lora NAME=PATH ...] [--lora-dir DIR]
                         [--device cuda] [--dtype auto|bf16|fp16|fp32] [--cpu-offload] [--vae-tiling]
                         [--upsampler auto|none|PATH] [--variant distilled|dev] [--distilled-lora PATH]
                         [--video-decoder auto|conv|diffusion] [--job-timeout SECONDS] [--min-free-mib MIB]
                         [--attention auto|dense|flex] [--compile] [--fp8] [--idle-exit SECONDS]
    render-backend render BUNDLE_DIR --out DIR --model PATH_OR_HUB_ID [--lora NAME=PATH ...]
                          [--control-lora NAME] [--prompt TEXT] [--seed N] [--steps N] [--stages 1|2]
    render-backend train DATASET --model PATH --out LORA.safetensors [--steps N] [--rank R]
                         [--reference-downscale-factor F] [--resume] ...   (docs/training.md)
    render-backend make-test-model DIR [--version 2.0|2.3|2.5] [--variant distilled|dev]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
from pathlib import Path

from . import __version__


def lora_dir_map(folder: str | Path) -> dict[str, str]:
    """{file stem: path} for every *.safetensors in `folder` (the LoRA's name is its file stem)."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise SystemExit(f"--lora-dir {folder} is not a folder")
    return {p.stem: str(p) for p in sorted(folder.glob("*.safetensors"))}


def parse_loras(pairs: list[str], lora_dir: str | None) -> dict[str, str]:
    loras = lora_dir_map(lora_dir) if lora_dir else {}
    for pair in pairs or []:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"--lora needs NAME=PATH (got '{pair}'), e.g. --lora control=loras/ic-depth.safetensors")
        if not Path(path).expanduser().is_file():
            raise SystemExit(f"--lora {name}: file {path} does not exist")
        loras[name] = str(Path(path).expanduser())
    return loras


def check_model(model: str) -> str:
    """A local folder must exist and hold model_index.json; anything shaped owner/name is a hub id."""
    path = Path(model).expanduser()
    looks_local = path.exists() or model.startswith((".", "/", "~")) or model.count("/") != 1
    if looks_local:
        if not path.is_dir():
            raise SystemExit(f"--model {model}: folder not found. Pass a diffusers LTX-2 folder, a hub id such "
                             "as Lightricks/LTX-2, or make a tiny test model: render-backend make-test-model DIR")
        if not (path / "model_index.json").is_file():
            raise SystemExit(f"--model {model}: no model_index.json in that folder; it must be a diffusers "
                             "pipeline folder (save_pretrained layout)")
        return str(path)
    return model


def _engine(args):
    from .engine import engine_class

    loras = parse_loras(args.lora, args.lora_dir)
    model = check_model(args.model)
    if not loras and Path(model, "loras").is_dir():
        loras = lora_dir_map(Path(model, "loras"))  # the test model ships its LoRAs next to it
    canvases = {}
    for pair in args.lora_canvas or []:
        name, sep, kind = pair.partition("=")
        if not sep or not name or not kind:
            raise SystemExit(f"--lora-canvas needs NAME=KIND (got '{pair}'), e.g. --lora-canvas my_depth=depth")
        canvases[name] = kind
    try:
        return engine_class(args.engine)(model, device=args.device, dtype=args.dtype, loras=loras or None,
                                         cpu_offload=args.cpu_offload, vae_tiling=args.vae_tiling,
                                         upsampler=args.upsampler, variant=args.variant,
                                         distilled_lora=args.distilled_lora, lora_canvases=canvases,
                                         video_decoder=args.video_decoder, attention=args.attention,
                                         compile=args.compile, fp8=args.fp8)
    except ValueError as e:  # a --upsampler / --distilled-lora path that is not one, a bad option combination
        raise SystemExit(f"error: {e}") from None


def _check_engine_flags(args) -> None:
    """The checks `_engine` makes before it imports the engine (cheap, no torch): `serve` runs them
    before it opens its port, then builds the engine on the model-load thread."""
    from .engine import ENGINES

    parse_loras(args.lora, args.lora_dir)
    model = check_model(args.model)
    for pair in args.lora_canvas or []:
        name, sep, kind = pair.partition("=")
        if not sep or not name or not kind:
            raise SystemExit(f"--lora-canvas needs NAME=KIND (got '{pair}'), e.g. --lora-canvas my_depth=depth")
    if args.engine not in ENGINES:
        raise SystemExit(f"error: unknown engine {args.engine!r}; available: {', '.join(sorted(ENGINES))}")
    if args.engine == "ltx2":  # the paths LTX2Engine's constructor checks
        from .engine.ltx2.stages import find_beside

        try:
            find_beside(model, args.upsampler, "upsampler")
            find_beside(model, args.distilled_lora, "distilled_lora")
        except ValueError as e:
            raise SystemExit(f"error: {e}") from None


def _add_engine_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", default="ltx2", help="render engine (default ltx2: Lightricks LTX-2 via diffusers)")
    p.add_argument("--model", required=True, help="diffusers LTX-2 folder or hub id")
    p.add_argument("--lora", action="append", default=[], metavar="NAME=PATH", help="install a LoRA (repeatable)")
    p.add_argument("--lora-dir", help="install every *.safetensors in DIR (name = file stem)")
    p.add_argument("--lora-canvas", action="append", default=[], metavar="NAME=KIND",
                   help="the canvas a control LoRA reads when neither its metadata nor its published name says: "
                   "depth+pose, depth, pose, edges, playblast, or several comma-separated (repeatable)")
    p.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: cuda when available)")
    p.add_argument("--dtype", default="auto", help="auto (bf16 on cuda, fp32 on cpu), bf16, fp16, fp32")
    p.add_argument("--cpu-offload", action="store_true", help="offload idle components to CPU (less VRAM)")
    p.add_argument("--vae-tiling", action="store_true", help="decode the video in tiles (less VRAM)")
    p.add_argument("--upsampler", default="auto",
                   help="latent upsampler folder for two-stage rendering (the default when there is one); "
                   "auto (default) = <model>/latent_upsampler if present; none = one stage only")
    p.add_argument("--variant", choices=("distilled", "dev"),
                   help="distilled or dev checkpoint (default: read from the model's scheduler config)")
    p.add_argument("--distilled-lora", default="auto",
                   help="Lightricks' distilled LoRA for stage 2 of a dev model; auto (default) = the one "
                   "*distilled*lora*.safetensors in the model folder; none = no two-stage for dev")
    p.add_argument("--video-decoder", choices=("auto", "conv", "diffusion"), default="auto",
                   help="auto (default): LTX-2.5's diffusion VAE decoder when the checkpoint has diffusion_decoder/, "
                   "else the VAE's conv decoder; conv: always the conv decoder (less GPU memory)")
    p.add_argument("--attention", choices=("auto", "dense", "flex"), default="auto",
                   help="kernel of the reference-strength attention bias: auto (default) = flex on CUDA, dense on "
                   "CPU; flex = FlexAttention, no (T, T) bias tensor (compiled on CUDA); dense = bias tensor + SDPA")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the transformer blocks (CUDA; the first render of each size compiles)")
    p.add_argument("--fp8", action="store_true",
                   help="store the transformer's weights in FP8 (e4m3), compute in --dtype: about half the "
                   "weight memory of bf16, slightly different output")


def cmd_serve(args) -> int:
    from .server.app import RenderServer
    from .server.auth import load_token
    from .server.config import ServerConfig

    config = ServerConfig(host=args.host, port=args.port, data_dir=args.data_dir, token=load_token(args.token_file),
                          tls_cert=args.tls_cert, tls_key=args.tls_key,
                          max_upload_bytes=int(args.max_upload_mib * 2**20), retention_days=args.retention_days,
                          retention_bytes=int(args.retention_gb * 2**30), heartbeat_s=args.heartbeat,
                          job_timeout_s=args.job_timeout, min_free_bytes=int(args.min_free_mib * 2**20))
    from .engine.deferred import DeferredEngine
    from .server.idle import wait_until_idle

    # The port opens before torch/diffusers are imported: the engine is built on the load thread.
    _check_engine_flags(args)
    invalid: list[str] = []

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_invalid(message: str) -> None:  # a flag the engine rejected: exit as before, with its message
            invalid.append(message)
            loop.call_soon_threadsafe(stop.set)

        server = RenderServer(DeferredEngine(lambda: _engine(args), on_invalid), config)
        port = await server.start()
        auth = "token" if config.token else "no token"
        print(f"render-backend {__version__} listening on {config.host}:{port} ({'TLS' if config.tls else 'plain'}, "
              f"{auth}); data in {config.data_dir}; loading {args.model} ...", flush=True)
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except NotImplementedError:  # Windows' event loops have no signal handlers: Python's own, then
                signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))  # back to the loop
        waits = [loop.create_task(stop.wait())]
        if args.idle_exit > 0:
            waits.append(loop.create_task(wait_until_idle(server.activity, server.busy, args.idle_exit)))
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        if not stop.is_set():
            print(f"stopping: no jobs and no clients for {args.idle_exit:g} s (--idle-exit)", flush=True)
        elif not invalid:
            print("stopping: the running job stops at its next step and is re-queued", flush=True)
        await server.stop(grace=2.0)

    asyncio.run(serve())
    if invalid:
        raise SystemExit(invalid[0])
    return 0


def apply_overrides(shot, args) -> None:
    """`render` flags that change what the bundle says without exporting it again."""
    for item in args.control_lora or []:
        index, sep, name = item.rpartition("=")
        if not sep and len(shot.controls) != 1:
            raise SystemExit(f"error: the bundle has {len(shot.controls)} controls; say which one: "
                             f"--control-lora INDEX=NAME (0..{len(shot.controls) - 1})")
        i = int(index) if sep and index.isdigit() else 0
        if not 0 <= i < len(shot.controls):
            raise SystemExit(f"error: --control-lora {item}: the bundle has controls 0..{len(shot.controls) - 1}")
        shot.controls[i].lora = name
    if args.prompt is not None:
        shot.prompt = args.prompt
    if args.seed is not None:
        shot.seed = args.seed
    if args.steps is not None:
        shot.steps = args.steps


def cmd_render(args) -> int:
    from .engine.request import EngineError
    from .media import file_stem, write_result
    from .offline import BundleError, ShotBundle, bundle_request, read_bundle
    from .server.convert import ShotError
    from .server.queue import model_info, result_sidecar
    from .shot_bundle import to_manifest

    try:
        bundle = read_bundle(args.bundle)
    except BundleError as e:
        raise SystemExit(f"error: {e}") from None
    apply_overrides(bundle.shot, args)
    bundle = ShotBundle(bundle.path, bundle.shot, to_manifest(bundle.shot))
    engine = _engine(args)
    t0 = time.monotonic()
    engine.load()
    print(f"loaded {args.model} in {time.monotonic() - t0:.1f} s", flush=True)
    try:
        req = bundle_request(bundle)
        if args.stages is not None:
            req.stages = args.stages
        warnings = engine.check_request(req)
    except (ShotError, BundleError, EngineError) as e:
        raise SystemExit(f"error: {e}") from None
    for w in warnings:
        print(f"warning: {w}")

    def progress(stage: str, step: int, total: int) -> None:
        print(f"  {stage} {step}/{total}" if total else f"  {stage}", flush=True)

    t1 = time.monotonic()
    try:
        result = engine.render(req, progress=progress)
    except EngineError as e:
        raise SystemExit(f"error: {e}") from None
    sidecar = result_sidecar(bundle.manifest, result, model=model_info(engine.capabilities()),
                             timings={"render_s": time.monotonic() - t1})
    sidecar["bundle"] = str(Path(args.bundle).resolve())
    stem = file_stem(bundle.manifest.shot_name)
    files = write_result(args.out, stem, result.video, result.fps, result.audio if req.audio else None,
                         result.audio_sample_rate, sidecar)
    for f in files:
        print(f"wrote {f['path']} ({f['size']} bytes)")
    return 0


def cmd_make_test_model(args) -> int:
    from .engine.ltx2.test_model import make_test_model

    t0 = time.monotonic()
    path = make_test_model(args.dir, variant=args.variant, version=args.version)
    print(f"tiny random LTX-{args.version} ({args.variant}) in {path} ({time.monotonic() - t0:.1f} s); LoRAs in "
          f"{path / 'loras'}.\nIts output is noise: it exists to test every stage without downloading weights.")
    return 0


def cmd_train(args) -> int:
    from .training.dataset import DatasetError
    from .training.options import TrainingError, TrainOptions

    if args.estimate_only:
        return _print_estimate(args)
    if not args.model or not (args.out or args.prepare_only):
        raise SystemExit("error: train needs --model PATH and --out LORA.safetensors (or --estimate-only)")
    options = TrainOptions(
        dataset=Path(args.dataset), model=check_model(args.model), out=Path(args.out or "prepared.safetensors"),
        steps=args.steps, rank=args.rank,
        alpha=args.alpha, learning_rate=args.learning_rate, reference_downscale_factor=args.reference_downscale_factor,
        modules=args.modules, optimizer=args.optimizer, gradient_checkpointing=args.gradient_checkpointing,
        device=args.device, dtype=args.dtype, save_dtype=args.save_dtype, validate_every=args.validate_every,
        validation_steps=args.validation_steps, checkpoint_every=args.checkpoint_every,
        keep_checkpoints=args.keep_checkpoints, holdout=args.holdout, seed=args.seed, log_every=args.log_every,
        resume=args.resume, overwrite=args.overwrite, prepare_only=args.prepare_only)
    from .training.trainer import Trainer

    try:
        Trainer(options, say=lambda line: print(line, flush=True)).run()
    except (TrainingError, DatasetError) as e:
        raise SystemExit(f"error: {e}") from None
    return 0


def _print_estimate(args) -> int:
    from .training.dataset import DatasetError, read_dataset
    from .training.memory import MODEL_SIZES, estimate

    try:
        ds = read_dataset(args.dataset)
        size = (ds.width, ds.height, ds.num_frames, args.reference_downscale_factor or ds.reference_downscale_factor)
    except DatasetError:
        size = (768, 512, 121, args.reference_downscale_factor or 1)
        print(f"no dataset at {args.dataset}: estimating for 768x512, 121 frames")
    for model in ([args.model_size] if args.model_size else list(MODEL_SIZES)):
        e = estimate(model, *size, rank=args.rank, feed_forward=args.modules == "attention+ff",
                     optimizer=args.optimizer, checkpointing=args.gradient_checkpointing)
        for line in e.lines():
            print(f"{model}: {line}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="render-backend", description="LTX-2 render backend for the Blender add-on")
    ap.add_argument("--version", action="version", version=__version__)
    ap.add_argument("-v", "--verbose", action="store_true")
    sub = ap.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the gRPC render service")
    _add_engine_args(s)
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback only)")
    s.add_argument("--port", type=int, default=50051)
    s.add_argument("--data-dir", help="job store (default $LTX_RENDER_DATA or ~/.local/share/ltx-render)")
    s.add_argument("--token-file", help="bearer token file (or set LTX_RENDER_TOKEN)")
    s.add_argument("--tls-cert", help="PEM certificate chain")
    s.add_argument("--tls-key", help="PEM private key")
    s.add_argument("--max-upload-mib", type=float, default=1024, help="largest shot upload (default 1024 MiB)")
    s.add_argument("--retention-days", type=float, default=14, help="delete finished jobs after N days")
    s.add_argument("--retention-gb", type=float, default=50, help="keep finished jobs' files under N GB")
    s.add_argument("--heartbeat", type=float, default=10, help="WatchJob heartbeat seconds (<= 15)")
    s.add_argument("--job-timeout", type=float, default=0, metavar="SECONDS",
                   help="fail a job still rendering after this long (DEADLINE_EXCEEDED); 0 = no limit")
    s.add_argument("--min-free-mib", type=float, default=256,
                   help="free space kept on the data disk: below it the server takes no new work (default 256)")
    s.add_argument("--idle-exit", type=float, default=0, metavar="SECONDS",
                   help="stop after this long with no jobs and no RPCs (a warm server nobody uses); 0 = never")
    s.set_defaults(func=cmd_serve)

    r = sub.add_parser("render", help="render a shot bundle folder offline (no server)")
    r.add_argument("bundle", help="shot bundle folder (with shot.json)")
    r.add_argument("--out", required=True, help="output folder for mp4, wav, json")
    r.add_argument("--control-lora", action="append", metavar="[INDEX=]NAME",
                   help="control LoRA that reads the bundle's canvas (overrides the bundle's; INDEX picks the "
                   "control when the bundle has several)")
    r.add_argument("--prompt", help="override the bundle's prompt")
    r.add_argument("--seed", type=int, help="override the bundle's seed")
    r.add_argument("--steps", type=int, help="denoising steps (default: the model's, 8 for distilled)")
    r.add_argument("--stages", type=int, choices=(1, 2),
                   help="1 = one stage at full size (fast preview), 2 = two-stage (default when available)")
    _add_engine_args(r)
    r.set_defaults(func=cmd_render)

    tr = sub.add_parser("train", help="train a control or camera-trajectory LoRA on a dataset from make-dataset",
                        description="Train a LoRA on the parallel canvas (reference tokens at timestep 0, positions "
                        "x the factor, loss on the target tokens), Lightricks' flow-matching objective. Writes "
                        "LORA.safetensors (Lightricks/ComfyUI keys) and LORA.training/ (checkpoints, loss log and "
                        "plot, validation renders). docs/training.md")
    tr.add_argument("dataset", help="dataset folder (python -m blender_addon.cli make-dataset)")
    tr.add_argument("--model", help="diffusers LTX-2 folder (the base model the LoRA is for)")
    tr.add_argument("--out", help="the LoRA file to write, NAME.safetensors")
    tr.add_argument("--steps", type=int, default=1000, help="optimisation steps (default 1000)")
    tr.add_argument("--rank", type=int, default=32, help="LoRA rank (default 32, Lightricks' IC-LoRA recipe)")
    tr.add_argument("--alpha", type=float, default=None, help="LoRA alpha (default = rank); folded into the file")
    tr.add_argument("--learning-rate", type=float, default=2e-4, help="AdamW learning rate, decays to 10%% (default 2e-4)")
    tr.add_argument("--reference-downscale-factor", type=int, default=None, metavar="F",
                    help="the canvas is read at 1/F of the output size (default: the dataset's export factor)")
    tr.add_argument("--modules", default="attention+ff", choices=["attention+ff", "attention"],
                    help="adapted layers: video self/cross-attention projections (+ feed-forward, the default)")
    tr.add_argument("--optimizer", default="adamw", choices=["adamw", "adamw8bit"],
                    help="adamw8bit: bitsandbytes' 8-bit AdamW (CUDA only)")
    tr.add_argument("--no-gradient-checkpointing", dest="gradient_checkpointing", action="store_false",
                    help="keep every block's activations (faster, far more memory)")
    tr.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: cuda when available)")
    tr.add_argument("--dtype", default="auto", help="base weights: auto (bf16 on cuda, fp32 on cpu), bf16, fp32")
    tr.add_argument("--save-dtype", default="bf16", choices=["bf16", "fp16", "fp32"], help="LoRA file precision")
    tr.add_argument("--validate-every", type=int, default=250, metavar="K",
                    help="held-out loss and a validation render every K steps (default 250)")
    tr.add_argument("--validation-steps", type=int, default=None, help="denoising steps of a validation render")
    tr.add_argument("--checkpoint-every", type=int, default=250, metavar="K", help="checkpoint every K steps")
    tr.add_argument("--keep-checkpoints", type=int, default=2, help="checkpoints kept (default 2)")
    tr.add_argument("--holdout", type=int, default=1, help="clips held out for the held-out loss (default 1)")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--log-every", type=int, default=10, help="progress line every N steps")
    tr.add_argument("--resume", action="store_true", help="continue from the last checkpoint in LORA.training/")
    tr.add_argument("--overwrite", action="store_true", help="train again from scratch over an existing LoRA")
    tr.add_argument("--prepare-only", action="store_true",
                    help="cache the latents (and draw camera-trajectory references + ltx-trainer metadata), no training")
    tr.add_argument("--estimate-only", action="store_true",
                    help="print the memory / time estimate for 19B and 22B models and exit (no model needed)")
    tr.add_argument("--model-size", choices=["19B", "22B"], help="with --estimate-only: only this size")
    tr.set_defaults(func=cmd_train)

    t = sub.add_parser("make-test-model", help="write the tiny random LTX-2 (+ LoRAs) used by tests and the demo")
    t.add_argument("dir")
    t.add_argument("--version", choices=("2.0", "2.3", "2.5"), default="2.0",
                   help="the LTX generation whose layout it has (default 2.0): LTX-2, LTX-2.3 or LTX-2.5")
    t.add_argument("--variant", choices=("distilled", "dev"), default="distilled",
                   help="which checkpoint it imitates (marked in its scheduler config, as real ones are)")
    t.set_defaults(func=cmd_make_test_model)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose or args.command == "serve" else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if getattr(args, "heartbeat", 10) > 15 or getattr(args, "heartbeat", 10) <= 0:
        raise SystemExit("--heartbeat must be in (0, 15] seconds (the protocol promises one at least every 15 s)")
    if getattr(args, "job_timeout", 0) < 0 or getattr(args, "min_free_mib", 0) < 0 or getattr(args, "idle_exit", 0) < 0:
        raise SystemExit("--job-timeout, --min-free-mib and --idle-exit must be 0 or more")
    if not 0 <= getattr(args, "port", 0) <= 65535:
        # gRPC would silently wrap an out-of-range port onto another one.
        raise SystemExit(f"--port must be 0..65535 (got {args.port}); 0 picks a free port")
    try:
        return args.func(args)
    except ValueError as e:  # bad flag combinations (e.g. --tls-cert without --tls-key)
        raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
    sys.exit(main())
