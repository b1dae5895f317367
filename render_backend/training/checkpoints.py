"""The training run's folder beside the LoRA (`LORA.training/` for `--out LORA.safetensors`) and its
checkpoints, for --resume.

    LORA.training/
      checkpoints/step_000250.safetensors   the LoRA at that step, the same format as the final file
      checkpoints/step_000250.state.pt      fp32 adapter weights, optimizer, LR schedule, RNG, options
      loss.jsonl, loss.png                  one JSON line per step (and per held-out / validation run)
      validation/step_000250.mp4            validation renders of the held-out clip
      summary.json                          the run's numbers, written at the end

A checkpoint is complete when its state file exists and names the sha256 of its LoRA file; both are
written to temp names and renamed (state last), so an interrupted write never looks complete.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from ..media import sha256_of
from .lora_file import write_atomic, write_lora

STATE_VERSION = 1
_NAME = re.compile(r"^step_(\d{6,})\.state\.pt$")


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def beside(cls, lora: str | Path) -> Workspace:
        lora = Path(lora)
        return cls(lora.with_name(lora.stem + ".training"))

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def validation(self) -> Path:
        return self.root / "validation"

    @property
    def loss_log(self) -> Path:
        return self.root / "loss.jsonl"

    @property
    def plot(self) -> Path:
        return self.root / "loss.png"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    def lora_at(self, step: int) -> Path:
        return self.checkpoints / f"step_{step:06d}.safetensors"

    def state_at(self, step: int) -> Path:
        return self.checkpoints / f"step_{step:06d}.state.pt"


def save_checkpoint(ws: Workspace, step: int, tensors: dict, metadata: dict, state: dict, keep: int) -> Path:
    """Write the LoRA, then the state naming its sha256 (the completion mark); keep the last `keep`."""
    ws.checkpoints.mkdir(parents=True, exist_ok=True)
    lora = write_lora(ws.lora_at(step), tensors, metadata)
    buf = io.BytesIO()
    torch.save({**state, "version": STATE_VERSION, "step": step, "lora_sha256": sha256_of(lora)}, buf)
    write_atomic(ws.state_at(step), buf.getvalue())
    for old in complete_steps(ws)[:-keep] if keep > 0 else []:
        ws.state_at(old).unlink(missing_ok=True)  # the completion mark first: a half-pruned one is incomplete
        ws.lora_at(old).unlink(missing_ok=True)
    return lora


def complete_steps(ws: Workspace) -> list[int]:
    """Steps with a state file and its LoRA file, oldest first (the sha256 is checked on load)."""
    if not ws.checkpoints.is_dir():
        return []
    steps = [int(m.group(1)) for p in ws.checkpoints.iterdir() if (m := _NAME.match(p.name))]
    return sorted(s for s in steps if ws.lora_at(s).is_file())


def load_checkpoint(ws: Workspace, step: int) -> dict:
    """The state of a checkpoint whose LoRA file is intact (sha256 as recorded), else ValueError."""
    state = torch.load(ws.state_at(step), map_location="cpu", weights_only=True)
    if state.get("version") != STATE_VERSION:
        raise ValueError(f"{ws.state_at(step).name}: checkpoint version {state.get('version')} is not "
                         f"{STATE_VERSION}")
    if sha256_of(ws.lora_at(step)) != state.get("lora_sha256"):
        raise ValueError(f"{ws.lora_at(step).name} does not match its state file (changed or damaged)")
    return state


def truncate_log(path: Path, step: int) -> None:
    """Keep the loss log's lines up to `step` (a resumed run re-does what came after its checkpoint)."""
    if not path.is_file():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step]
    write_atomic(path, ("".join(line + "\n" for line in kept)).encode())
