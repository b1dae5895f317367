"""The LoRA registry: which LoRA files the server has, what kind each is, and a shape check.

Kinds, in the user's words:
- "control": an IC-LoRA that reads the control canvas as a reference (parallel canvas);
- "camera_preset": a plain LoRA for one camera move (the published dolly/jib/static files);
- "camera_trajectory": an IC-LoRA that reads the camera trajectory canvas as a reference;
- "style": any other plain LoRA.

The kind comes from the file's safetensors metadata (`ltx_blender_kind`, `camera_move`,
`reference_downscale_factor`) and, for published files without our keys, from the file name
("...camera-control-dolly-in..." -> camera preset dolly_in; "...ic-lora..." -> control).

A control LoRA reads one canvas kind (docs/canvas-kinds.md), the same way: metadata
`ltx_blender_canvas`, else the table of Lightricks' published names (PUBLISHED_CANVASES), else
the server's `--lora-canvas NAME=KIND`; a union LoRA reads any one of several ("depth,pose,edges").
Unknown stays None: the LoRA is offered for any kind, and Capabilities says so. The base model
generation comes from metadata (`ltx_blender_base`, `model_version`) or the published name prefix.
An IC-LoRA's `reference_temporal_scale_factor` (written by Lightricks' trainer since ltx-core 1.1.6, read by
ltx-pipelines 1.2+) says it reads every S-th frame of its canvas.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..media import sha256_of
from .camera_moves import PRESETS as CAMERA_MOVES
from .contract import LoraCapability
from .request import CANVAS_KINDS, LoraMismatch

KINDS = ("control", "camera_preset", "camera_trajectory", "style")
# Key prefixes of the two formats the diffusers loader reads (Lightricks/ComfyUI, diffusers/peft).
_KEY_PREFIXES = ("diffusion_model.", "transformer.")
# Lightricks' published control IC-LoRAs and the canvas each was trained on (model cards and
# ComfyUI-LTXVideo example workflows, Dec 2026): name fragment -> canvas kind(s). The first match wins.
PUBLISHED_CANVASES = (
    ("union", "depth,pose,edges"),  # LTX-2 Union ref0.5, LTX-2.3 Union Control ref0.5: ONE kind per clip
    ("depth-control", "depth"),
    ("pose-control", "pose"),
    ("canny-control", "edges"),
    ("layout-to-render", "playblast"),  # LTX-2.5; artists feed it playblasts (its input spec is unpublished)
)
# Published file name prefix -> base model generation.
PUBLISHED_BASES = (("ltx-2.5", "ltx-2.5"), ("ltx-2.3", "ltx-2.3"), ("ltx-2-19b", "ltx-2"))


@dataclass
class LoraInfo:
    """One installed LoRA file. reference_downscale_factor is None for plain LoRAs;
    reference_temporal_scale_factor is 1 unless the IC-LoRA's metadata says otherwise."""

    name: str
    path: str
    kind: str
    reference_downscale_factor: int | None
    camera_move: str | None
    sha256: str
    rank: int
    metadata: dict = field(default_factory=dict)
    canvas: str | None = None  # control LoRAs: the canvas kind(s) it reads, "a,b" = any one of them
    base: str | None = None  # the model generation it was trained for, when the file says
    reference_temporal_scale_factor: int = 1

    @property
    def reads_canvas(self) -> bool:
        """An IC-LoRA (control or camera trajectory): trained on a reference canvas."""
        return self.kind in ("control", "camera_trajectory")

    def capability(self) -> LoraCapability:
        """What GetCapabilities shows (no path, no raw metadata)."""
        return LoraCapability(name=self.name, kind=self.kind, reference_downscale_factor=self.reference_downscale_factor,
                              camera_move=self.camera_move, sha256=self.sha256, rank=self.rank, canvas=self.canvas,
                              base=self.base, reference_temporal_scale_factor=self.reference_temporal_scale_factor)


def find_loras(folder: str | Path) -> dict[str, str]:
    """name -> path for every *.safetensors in `folder` (the name is the file stem)."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    return {p.stem: str(p) for p in sorted(folder.glob("*.safetensors"))}


def camera_move_from_name(name: str) -> str | None:
    """'ltx-2-19b-lora-camera-control-dolly-in' -> 'dolly_in'; None when no move is named."""
    flat = re.sub(r"[^a-z]+", "_", name.lower())
    for move in CAMERA_MOVES:
        if re.search(rf"(^|_){move}(_|$)", flat):
            return move
    return None


def infer_kind(name: str, metadata: dict[str, str]) -> tuple[str, int | None, str | None]:
    """(kind, reference_downscale_factor, camera_move) from metadata, then the file name."""
    factor = _parse_factor(name, metadata.get("reference_downscale_factor"))
    move = metadata.get("camera_move") or None
    kind = metadata.get("ltx_blender_kind")
    if kind is not None and kind not in KINDS:
        raise LoraMismatch(f"LoRA {name!r}: metadata ltx_blender_kind={kind!r} is not one of {', '.join(KINDS)}")
    lowered = name.lower()
    if kind is None:
        if factor is not None or "ic-lora" in lowered or "ic_lora" in lowered:
            # An IC-LoRA: a camera one reads the trajectory canvas, any other the control canvas.
            kind = "camera_trajectory" if ("trajectory" in lowered or "camera" in lowered) else "control"
        elif "camera" in lowered and camera_move_from_name(name):
            kind = "camera_preset"
        else:
            kind = "style"
    if kind == "camera_preset":
        move = move or camera_move_from_name(name)
        if move not in CAMERA_MOVES:
            raise LoraMismatch(f"camera preset LoRA {name!r} names no known move (got {move!r}); "
                               f"expected one of {', '.join(CAMERA_MOVES)} in its metadata or file name")
    if kind in ("control", "camera_trajectory") and factor is None:
        factor = 1  # an IC-LoRA without the key was trained at full reference size
    return kind, factor, move


def infer_canvas(name: str, metadata: dict[str, str], declared: str | None = None) -> str | None:
    """The canvas kind(s) a control LoRA reads: metadata, else the published name, else `declared`
    (the server's --lora-canvas); None when nothing says."""
    raw = metadata.get("ltx_blender_canvas") or None
    source = "metadata ltx_blender_canvas"
    if raw is None:
        lowered = name.lower().replace("_", "-")
        raw = next((canvas for fragment, canvas in PUBLISHED_CANVASES if fragment in lowered), None)
        source = "published name"
    if raw is None and declared:
        raw, source = declared, "--lora-canvas"
    if raw is None:
        return None
    kinds = [k.strip() for k in raw.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in CANVAS_KINDS]
    if unknown or not kinds:
        raise LoraMismatch(f"LoRA {name!r}: {source} names canvas kind(s) {raw!r}; use one or more of "
                           f"{', '.join(CANVAS_KINDS)} (comma-separated)")
    return ",".join(kinds)


def infer_base(name: str, metadata: dict[str, str]) -> str | None:
    """'ltx-2', 'ltx-2.3', 'ltx-2.5' from metadata or the published file name; None when unknown.

    Versions are read as major.minor ("2.3.1" is LTX-2.3); 2.4 is Lightricks' internal number for
    LTX-2.5 (ltx-pipelines selects its 2.5 parameters from model_version >= 2.4)."""
    raw = (metadata.get("ltx_blender_base") or metadata.get("model_version") or "").strip().lower()
    if raw:
        version = raw.removeprefix("ltx-").removeprefix("ltx")
        match = re.fullmatch(r"(\d+)(?:\.(\d+))?(?:\.\d+)*", version)
        if match:
            major, minor = int(match.group(1)), int(match.group(2) or 0)
            minor = 5 if (major, minor) == (2, 4) else minor
            version = f"{major}" if minor == 0 else f"{major}.{minor}"
        return f"ltx-{version}"
    lowered = name.lower().replace("_", "-")
    return next((base for prefix, base in PUBLISHED_BASES if lowered.startswith(prefix)), None)


def check_lora_base(info: LoraInfo, generation: str, model: str) -> None:
    """Refuse a LoRA whose declared base generation is not the checkpoint's, naming both (a LoRA only
    works on the base model it was trained on; an undeclared base is left to the shape check)."""
    if info.base is None or info.base == generation:
        return
    said = ("its metadata" if info.metadata.get("ltx_blender_base") or info.metadata.get("model_version")
            else "its published file name")
    raise LoraMismatch(f"LoRA {info.name!r} was trained for {info.base} ({said}) but {model} is an {generation} "
                       f"checkpoint; install a LoRA made for {generation}, or serve an {info.base} checkpoint")


def _parse_factor(name: str, raw: str | None, key: str = "reference_downscale_factor") -> int | None:
    if raw is None or raw == "":
        return None
    try:
        factor = int(float(raw))
    except ValueError:
        raise LoraMismatch(f"LoRA {name!r}: {key}={raw!r} is not a number") from None
    if factor < 1 or float(raw) != factor:
        raise LoraMismatch(f"LoRA {name!r}: {key} must be a positive integer (got {raw})")
    return factor


def temporal_scale_factor(name: str, kind: str, metadata: dict[str, str]) -> int:
    """An IC-LoRA's reference_temporal_scale_factor (default 1); a plain LoRA reads no canvas: 1."""
    key = "reference_temporal_scale_factor"
    factor = _parse_factor(name, metadata.get(key), key) or 1
    if factor != 1 and kind not in ("control", "camera_trajectory"):
        raise LoraMismatch(f"LoRA {name!r} is a {kind} LoRA (no canvas) but its metadata sets {key}={factor}; "
                           "mark it as an IC-LoRA (ltx_blender_kind=control) or remove the key")
    return factor


def inspect_lora(name: str, path: str | Path, canvas: str | None = None) -> LoraInfo:
    """Read a LoRA file's metadata, kind, canvas, base, rank and sha256 (no tensors are kept).
    canvas: what the server was told the LoRA reads (--lora-canvas), used when the file does not say."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise LoraMismatch(f"LoRA {name!r}: file not found: {path}")
    with safe_open(str(path), framework="pt") as f:
        metadata = dict(f.metadata() or {})
        rank = 0
        for key in f.keys():
            if key.endswith("lora_A.weight") or key.endswith("lora_down.weight"):
                rank = int(f.get_slice(key).get_shape()[0])
                break
    if rank == 0:
        raise LoraMismatch(f"LoRA {name!r} ({path.name}) has no lora_A/lora_down weights: not a LoRA file")
    # A published file's own name says what it is, whatever the server calls it.
    words = path.stem if infer_base(path.stem, {}) else name
    kind, factor, move = infer_kind(words, metadata)
    return LoraInfo(name=name, path=str(path), kind=kind, reference_downscale_factor=factor,
                    camera_move=move, sha256=sha256_of(path), rank=rank, metadata=metadata,
                    canvas=infer_canvas(words, metadata, canvas) if kind == "control" else None,
                    base=infer_base(words, metadata),
                    reference_temporal_scale_factor=temporal_scale_factor(name, kind, metadata))


def check_lora_shapes(info: LoraInfo, transformer, base_name: str) -> None:
    """Refuse a LoRA trained for another base model, naming both shapes.

    For every `<module>.lora_A/B.weight` whose module exists in `transformer` under the same
    path, A must be (rank, in_features) and B (out_features, rank). Keys the diffusers loader
    renames (Lightricks audio/cross-attention names) are left to the loader.
    """
    from safetensors import safe_open

    modules = dict(transformer.named_modules())
    with safe_open(info.path, framework="pt") as f:
        for key in f.keys():
            if not (key.endswith(".lora_A.weight") or key.endswith(".lora_B.weight")):
                continue
            module_path, which = key.rsplit(".", 2)[0], key.rsplit(".", 2)[1]
            for prefix in _KEY_PREFIXES:
                if module_path.startswith(prefix):
                    module_path = module_path[len(prefix):]
                    break
            module = modules.get(module_path)
            if module is None or not hasattr(module, "in_features"):
                continue
            shape = tuple(f.get_slice(key).get_shape())
            if which == "lora_A":
                expected, got, what = module.in_features, shape[1], "input"
            else:
                expected, got, what = module.out_features, shape[0], "output"
            if got != expected:
                base_shape = (module.out_features, module.in_features)
                raise LoraMismatch(
                    f"LoRA {info.name!r} does not fit base model {base_name!r}: {key} has shape {shape} "
                    f"({what} width {got}) but the model's {module_path} weight is {base_shape} "
                    f"({what} width {expected}); use a LoRA trained for this base model"
                )
