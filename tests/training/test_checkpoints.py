"""Checkpoints and --resume: a crashed run resumes to the very LoRA an uninterrupted run writes; a full
disk during a checkpoint stops with what to do and leaves nothing that looks complete; a checkpoint of
another model generation is refused."""

from __future__ import annotations

import errno
import os
from dataclasses import replace

import pytest
import torch

from render_backend.training import lora_file
from render_backend.training.checkpoints import Workspace
from render_backend.training.trainer import Trainer, TrainingError, TrainOptions

from .synthetic import rows, write_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("ckpt") / "ds", clips=3)


def _options(dataset, tiny_model, out, **kw) -> TrainOptions:
    return TrainOptions(dataset=dataset, model=str(tiny_model), out=out, steps=12, rank=4, learning_rate=1e-3,
                        checkpoint_every=4, validate_every=100, validation_steps=2, save_dtype="fp32", **kw)


def _run(options, lines=None):
    return Trainer(options, say=(lines.append if lines is not None else lambda _: None)).run()


def test_a_crashed_run_resumes_to_the_same_lora(dataset, tiny_model, tmp_path, monkeypatch):
    straight = tmp_path / "straight.safetensors"
    _run(_options(dataset, tiny_model, straight))

    crashed = tmp_path / "crashed.safetensors"
    real_step, calls = Trainer.step, []

    def crash_at_seven(self, name):
        calls.append(name)
        if len(calls) == 7:
            raise RuntimeError("power cut")
        return real_step(self, name)

    monkeypatch.setattr(Trainer, "step", crash_at_seven)
    with pytest.raises(RuntimeError, match="power cut"):
        _run(_options(dataset, tiny_model, crashed))
    monkeypatch.setattr(Trainer, "step", real_step)
    assert not crashed.exists()
    lines = []
    _run(_options(dataset, tiny_model, crashed, resume=True), lines)
    assert "resumed from step 4 (step_000004.safetensors)" in lines
    a, _ = lora_file.read_lora(straight)
    b, meta = lora_file.read_lora(crashed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert meta["ltx_blender_steps"] == "12"
    steps = [r["step"] for r in rows(Workspace.beside(crashed).loss_log) if "loss" in r]
    assert steps == list(range(1, 13))  # the steps after the checkpoint were done once more, logged once


def test_a_full_disk_during_a_checkpoint_stops_cleanly_and_resumes(dataset, tiny_model, tmp_path, monkeypatch):
    out = tmp_path / "full.safetensors"
    ws = Workspace.beside(out)
    armed = {"on": False}
    real_write, real_checkpoint = lora_file._write, Trainer._checkpoint

    def disk(fd, view):
        if armed["on"]:  # a third of the file goes out, then the disk is full
            os.write(fd, view[: len(view) // 3])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, view)

    def checkpoint(self, step):
        armed["on"] = step == 8
        return real_checkpoint(self, step)

    monkeypatch.setattr(lora_file, "_write", disk)
    monkeypatch.setattr(Trainer, "_checkpoint", checkpoint)
    with pytest.raises(TrainingError) as exc:
        _run(_options(dataset, tiny_model, out))
    message = str(exc.value)
    assert "checkpoint at step 8 failed" in message and "the disk is full" in message
    assert "the last complete checkpoint is step 4" in message and "--resume" in message
    assert sorted(p.name for p in ws.checkpoints.iterdir()) == ["step_000004.safetensors", "step_000004.state.pt"]
    assert not out.exists()

    armed["on"] = False
    monkeypatch.setattr(Trainer, "_checkpoint", real_checkpoint)
    lines = []
    _run(_options(dataset, tiny_model, out, resume=True), lines)
    assert "resumed from step 4 (step_000004.safetensors)" in lines
    tensors, meta = lora_file.read_lora(out)
    assert meta["ltx_blender_kind"] == "control" and len(tensors) == 40


def test_resume_refuses_a_checkpoint_of_another_generation(dataset, tiny_model, tmp_path):
    out = tmp_path / "gen.safetensors"
    _run(replace(_options(dataset, tiny_model, out), steps=4))
    ws = Workspace.beside(out)
    tensors, meta = lora_file.read_lora(ws.lora_at(4))
    lora_file.write_lora(ws.lora_at(4), tensors, {**meta, "ltx_blender_base": "ltx-2.3"})
    with pytest.raises(TrainingError, match="trained for ltx-2.3, but this model is ltx-2"):
        _run(replace(_options(dataset, tiny_model, out, resume=True), steps=8))


def test_a_dev_model_trains_and_renders_its_validation_with_guidance(dataset, tiny_dev_model, tmp_path):
    """A dev model's validation render needs the negative prompt's embeddings too (CFG): they are computed
    with the captions, so the render never needs the text encoder again."""
    out = tmp_path / "dev.safetensors"
    lines = []
    summary = _run(replace(_options(dataset, tiny_dev_model, out), steps=2, validate_every=2), lines)
    assert any("(ltx-2, dev)" in line for line in lines)
    assert summary["heldout_loss_last"] is not None and out.is_file()
    assert (Workspace.beside(out).validation / "step_000002.mp4").is_file()
