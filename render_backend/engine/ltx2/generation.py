"""Which LTX model generation a checkpoint is (LTX-2, LTX-2.3, LTX-2.5), read from its files, never its name.

diffusers 0.42.1 has one set of classes for all three; the generation is in the configs its
conversion (scripts/convert_ltx2_to_diffusers.py) writes:

    file                        LTX-2 (ltx-2)             LTX-2.3 (ltx-2.3)              LTX-2.5 (ltx-2.5)
    transformer/config.json     gated_attn false,         gated_attn true,               as 2.3, ff_bias false
                                cross_attn_mod false      cross_attn_mod true
    text_encoder/config.json    model_type gemma3         gemma3                         gemma4_unified
    vocoder/config.json         LTX2Vocoder               LTX2VocoderWithBWE (48 kHz)    LTX2VocoderWithBWE
    vae/config.json             3 decoder up blocks       4                              4
    diffusion_decoder/          -                         -                              (optional) present

The transformer config decides; every other file present must agree, or the checkpoint mixes
generations and is refused, naming what each file says. A missing key counts as diffusers' default
(older conversions predate some keys). The names are the ones LoRA files declare as their base
(engine/loras.py `infer_base`), so a LoRA's base and the checkpoint compare directly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..request import EngineError

GENERATIONS = ("ltx-2", "ltx-2.3", "ltx-2.5")
LATER = frozenset(GENERATIONS[1:])  # gated attention and everything that came with it
DIFFUSION_DECODER_DIR = "diffusion_decoder"
_FILES = {"transformer": "transformer/config.json", "text_encoder": "text_encoder/config.json",
          "vocoder": "vocoder/config.json", "vae": "vae/config.json",
          "diffusion_decoder": f"{DIFFUSION_DECODER_DIR}/config.json"}


class ModelGenerationUnknown(EngineError):
    """The checkpoint's files do not say one LTX generation (a mixed or foreign folder)."""

    code = "FAILED_PRECONDITION"


@dataclass(frozen=True)
class Generation:
    """name: "ltx-2", "ltx-2.3" or "ltx-2.5". evidence: what each file said, in order.
    diffusion_decoder: the checkpoint has LTX-2.5's diffusion VAE decoder (diffusion_decoder/)."""

    name: str
    evidence: tuple[str, ...]
    diffusion_decoder: bool = False

    @property
    def source(self) -> str:
        return "; ".join(self.evidence)

    @property
    def at_least_2_3(self) -> bool:
        return self.name in LATER


def _flag(value) -> str:
    return json.dumps(value)


def _transformer(cfg: dict) -> tuple[frozenset, str]:
    gated, mod = bool(cfg.get("gated_attn", False)), bool(cfg.get("cross_attn_mod", False))
    ff_bias = bool(cfg.get("ff_bias", True))
    said = f"transformer/config.json: gated_attn={_flag(gated)}, cross_attn_mod={_flag(mod)}, ff_bias={_flag(ff_bias)}"
    if gated != mod:
        raise ModelGenerationUnknown(f"{said}: no LTX generation has one without the other")
    if not gated:
        return frozenset({"ltx-2"}) if ff_bias else frozenset(), said
    return frozenset({"ltx-2.3"} if ff_bias else {"ltx-2.5"}), said


def _text_encoder(cfg: dict) -> tuple[frozenset | None, str]:
    kind = cfg.get("model_type", "")
    said = f"text_encoder/config.json: model_type {kind}"
    return {"gemma3": frozenset({"ltx-2", "ltx-2.3"}), "gemma4_unified": frozenset({"ltx-2.5"})}.get(kind), said


def _vocoder(cfg: dict) -> tuple[frozenset | None, str]:
    kind = cfg.get("_class_name", "")
    said = f"vocoder/config.json: {kind} ({cfg.get('output_sampling_rate', '?')} Hz)"
    return {"LTX2Vocoder": frozenset({"ltx-2"}), "LTX2VocoderWithBWE": LATER}.get(kind), said


def _vae(cfg: dict) -> tuple[frozenset | None, str]:
    blocks = len(cfg.get("decoder_block_out_channels") or ())
    return {3: frozenset({"ltx-2"}), 4: LATER}.get(blocks), f"vae/config.json: {blocks} decoder up blocks"


def generation_from_configs(configs: dict[str, dict | None], model: str = "the checkpoint") -> Generation:
    """The generation of a checkpoint whose configs are `configs` (keys as in _FILES; None = no such file).
    Raises ModelGenerationUnknown when there is no transformer config or the files disagree."""
    if not configs.get("transformer"):
        raise ModelGenerationUnknown(f"{model} has no transformer/config.json: it is not a diffusers LTX-2 "
                                     "checkpoint (convert it with diffusers' scripts/convert_ltx2_to_diffusers.py)")
    candidates, said = _transformer(configs["transformer"])
    evidence, votes = [said], [(candidates, said)]
    for part, read in (("text_encoder", _text_encoder), ("vocoder", _vocoder), ("vae", _vae)):
        if configs.get(part):
            vote, said = read(configs[part])
            evidence.append(said)
            if vote is not None:
                votes.append((vote, said))
                candidates = candidates & vote
    has_decoder = bool(configs.get("diffusion_decoder"))
    if has_decoder:
        said = f"{DIFFUSION_DECODER_DIR}/ present (LTX-2.5's diffusion VAE decoder)"
        evidence.append(said)
        votes.append((frozenset({"ltx-2.5"}), said))
        candidates = candidates & {"ltx-2.5"}
    if len(candidates) != 1:
        told = "; ".join(f"{said} -> {' or '.join(_names(vote)) or 'none'}" for vote, said in votes)
        raise ModelGenerationUnknown(
            f"cannot tell which LTX generation {model} is: its files disagree ({told}); every folder must come "
            "from one checkpoint of one generation (LTX-2, LTX-2.3 or LTX-2.5)")
    return Generation(next(iter(candidates)), tuple(evidence), has_decoder)


def _names(vote: frozenset) -> list[str]:
    return [g for g in GENERATIONS if g in vote]


def read_configs(model: str) -> dict[str, dict | None]:
    """The configs generation_from_configs reads, from a local folder or a hub id (through the hub cache:
    from_pretrained fetches them anyway; with HF_HUB_OFFLINE=1 only the cache is read)."""
    folder = Path(model).expanduser()
    configs: dict[str, dict | None] = {}
    for part, name in _FILES.items():
        if folder.is_dir():
            path = folder / name
            configs[part] = json.loads(path.read_text()) if path.is_file() else None
        else:
            configs[part] = _hub_config(model, name)
    return configs


def _hub_config(repo: str, name: str) -> dict | None:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return json.loads(Path(hf_hub_download(repo, name)).read_text())
    except EntryNotFoundError:
        return None


def read_generation(model: str) -> Generation:
    """The generation of the checkpoint at `model` (folder or hub id), from its files."""
    return generation_from_configs(read_configs(model), model)
