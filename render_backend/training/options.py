"""What `render-backend train` is asked to do (TrainOptions) and the layers its LoRA adapts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .lora_file import SAVE_DTYPES

ADAPTER = "training_lora"  # the adapter's name inside the engine ("training" is taken by nn.Module)
TARGET_MODULES = {
    "attention+ff": r"transformer_blocks\.\d+\.(attn1|attn2)\.(to_q|to_k|to_v|to_out\.0)"
                    r"|transformer_blocks\.\d+\.ff\.net\.(0\.proj|2)",
    "attention": r"transformer_blocks\.\d+\.(attn1|attn2)\.(to_q|to_k|to_v|to_out\.0)",
}


class TrainingError(Exception):
    """Training cannot start or go on; the message says what to change."""


@dataclass
class TrainOptions:
    dataset: Path
    model: str
    out: Path
    steps: int = 1000
    rank: int = 32
    alpha: float | None = None  # None = rank (scale 1, what every loader assumes); folded into the file
    learning_rate: float = 2e-4
    reference_downscale_factor: int | None = None  # None = the factor the dataset's canvases were made for
    modules: str = "attention+ff"
    optimizer: str = "adamw"
    gradient_checkpointing: bool = True
    device: str | None = None
    dtype: str = "auto"
    save_dtype: str = "bf16"
    validate_every: int = 250
    validation_steps: int | None = None  # None = the model's default
    checkpoint_every: int = 250
    keep_checkpoints: int = 2
    holdout: int = 1
    seed: int = 0
    max_grad_norm: float = 1.0
    log_every: int = 10
    resume: bool = False
    overwrite: bool = False
    prepare_only: bool = False

    def check(self) -> None:
        for name in ("steps", "rank", "validate_every", "checkpoint_every", "log_every"):
            if int(getattr(self, name)) < 1:
                raise TrainingError(f"--{name.replace('_', '-')} must be at least 1 (got {getattr(self, name)})")
        if self.modules not in TARGET_MODULES:
            raise TrainingError(f"--modules must be one of {', '.join(TARGET_MODULES)} (got {self.modules!r})")
        if self.save_dtype not in SAVE_DTYPES:
            raise TrainingError(f"--save-dtype must be one of {', '.join(SAVE_DTYPES)} (got {self.save_dtype!r})")
        if self.optimizer not in ("adamw", "adamw8bit"):
            raise TrainingError(f"--optimizer must be adamw or adamw8bit (got {self.optimizer!r})")
        if not self.out.name.endswith(".safetensors"):
            raise TrainingError(f"--out must name a .safetensors file (got {self.out})")
