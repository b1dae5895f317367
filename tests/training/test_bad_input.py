"""Datasets and options the trainer refuses, each with a message that says what to change, before any
weight is loaded."""

from __future__ import annotations

import json
import shutil

import pytest

from render_backend.cli import main

from .synthetic import write_dataset


def _train(capsys, dataset, tiny_model, out, *extra) -> str:
    with pytest.raises(SystemExit) as exc:
        main(["train", str(dataset), "--model", str(tiny_model), "--out", str(out), "--steps", "2", *extra])
    return str(exc.value)


def test_an_empty_dataset_says_how_to_make_clips(tmp_path, tiny_model, capsys):
    ds = write_dataset(tmp_path / "ds", clips=1)
    doc = json.loads((ds / "dataset.json").read_text())
    doc["clips"] = []
    (ds / "dataset.json").write_text(json.dumps(doc))
    message = _train(capsys, ds, tiny_model, tmp_path / "x.safetensors")
    assert "no finished clips" in message and "make-dataset" in message
    message = _train(capsys, tmp_path / "nowhere", tiny_model, tmp_path / "x.safetensors")
    assert "no such folder" in message and "make-dataset" in message
    assert not (tmp_path / "x.safetensors").exists()


def test_a_mixed_size_dataset_names_both_sizes(tmp_path, tiny_model, capsys):
    ds = write_dataset(tmp_path / "ds", sizes=[(64, 64), (64, 64), (96, 64)])
    message = _train(capsys, ds, tiny_model, tmp_path / "x.safetensors")
    assert "mixes clip sizes" in message
    assert "64x64, 9 frames, 24 fps, canvas 64x64: 2 clip(s) (clip_0000, clip_0001)" in message
    assert "96x64, 9 frames, 24 fps, canvas 96x64: 1 clip(s) (clip_0002)" in message
    assert "one --size and --frames" in message


def test_missing_targets_and_foreign_datasets_are_named(tmp_path, tiny_model, capsys):
    ds = write_dataset(tmp_path / "ds", clips=2)
    (ds / "clips" / "clip_0001" / "target" / "000004.png").unlink()
    message = _train(capsys, ds, tiny_model, tmp_path / "x.safetensors")
    assert "clip clip_0001: 1 target frame(s) missing" in message and "000004.png" in message
    (ds / "dataset.json").unlink()  # what ltx-trainer alone would have: metadata.jsonl
    message = _train(capsys, ds, tiny_model, tmp_path / "x.safetensors")
    assert "ltx-trainer index but no dataset.json" in message


def test_eight_bit_adam_without_cuda_fails_before_loading(tmp_path, tiny_model, capsys):
    ds = write_dataset(tmp_path / "ds", clips=2)
    message = _train(capsys, ds, tiny_model, tmp_path / "x.safetensors", "--optimizer", "adamw8bit", "--device", "cpu")
    assert "adamw8bit runs on CUDA only" in message and "--optimizer adamw" in message
    assert "loaded" not in capsys.readouterr().out


def test_an_existing_lora_is_not_overwritten_without_asking(tmp_path, tiny_model, capsys):
    ds = write_dataset(tmp_path / "ds", clips=2)
    out = tmp_path / "x.safetensors"
    out.write_bytes(b"someone's LoRA")
    message = _train(capsys, ds, tiny_model, out)
    assert "exists" in message and "--resume" in message and "--overwrite" in message
    assert out.read_bytes() == b"someone's LoRA"
    shutil.rmtree(ds)


def test_a_factor_that_does_not_divide_the_size_is_refused(tmp_path, tiny_model, capsys):
    ds = write_dataset(tmp_path / "ds", clips=2)
    message = _train(capsys, ds, tiny_model, tmp_path / "x.safetensors", "--reference-downscale-factor", "4")
    assert "64x64 / 4 is not a multiple of 32" in message
