"""Distilled or dev: read from the checkpoint, never from its folder name.

A distilled and a dev LTX-2 transformer have the same config and the same tensor names (Lightricks
ships them as two files; its own pipelines are told which one they get). In diffusers layout the
checkpoint says it in the scheduler config that diffusers' conversion
(scripts/convert_ltx2_to_diffusers.py) writes beside the transformer:
    distilled: use_dynamic_shifting false, shift_terminal null  (the published sigmas, as they are)
    dev:       use_dynamic_shifting true,  shift_terminal 0.1   (Lightricks' LTX2Scheduler)
`render-backend make-test-model --variant` writes the same marker. Anything else cannot be told:
the server then refuses to start and says to pass --variant.
"""

from __future__ import annotations

from ..request import EngineError

VARIANTS = ("distilled", "dev")
MARKER = "scheduler/scheduler_config.json"


class ModelVariantUnknown(EngineError):
    """The checkpoint does not say whether it is distilled or dev, and no --variant was given."""

    code = "FAILED_PRECONDITION"


def scheduler_config(variant: str) -> dict:
    """The scheduler settings diffusers' LTX-2 conversion writes for `variant` (the marker read here)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)} (got {variant!r})")
    distilled = variant == "distilled"
    return {"use_dynamic_shifting": not distilled, "shift_terminal": None if distilled else 0.1,
            "base_shift": 0.95, "max_shift": 2.05, "base_image_seq_len": 1024, "max_image_seq_len": 4096}


def _json(value) -> str:
    return {None: "null", True: "true", False: "false"}.get(value, str(value)) if not isinstance(value, float) \
        else f"{value:g}"


def resolve_variant(model: str, config, override: str | None = None) -> tuple[str, str]:
    """(variant, how it was decided) for the model whose scheduler config is `config`.

    override: the --variant flag ("distilled" or "dev"), which wins. Raises ModelVariantUnknown when
    the config matches neither conversion and no override was given.
    """
    if override is not None:
        if override not in VARIANTS:
            raise ValueError(f"--variant must be distilled or dev (got {override!r})")
        return override, "--variant flag"
    dynamic, terminal = config.get("use_dynamic_shifting"), config.get("shift_terminal")
    seen = f"{MARKER}: use_dynamic_shifting={_json(dynamic)}, shift_terminal={_json(terminal)}"
    if dynamic is False and terminal is None:
        return "distilled", seen
    if dynamic is True and terminal is not None:
        return "dev", seen
    raise ModelVariantUnknown(
        f"cannot tell whether {model} is a distilled or a dev LTX-2 checkpoint: {seen} (diffusers' conversion "
        "writes false/null for distilled, true/0.1 for dev); start the server with --variant distilled or "
        "--variant dev")
