"""Stopping a generation inside a long step: a cancel check before every transformer (and VAE decoder) block.

One denoising step of a long shot can take minutes on a big model; a check between steps only would let
CancelJob, a server's --job-timeout or its shutdown wait that long. A forward pre-hook on each block asks
`should_cancel()` (a few flag reads) and raises Cancelled. It reads no tensor and changes none: the numbers
are the same with or without it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import torch

from ..request import CancelFn, Cancelled


def long_running_blocks(pipe) -> list[torch.nn.Module]:
    """The blocks whose calls add up to a step or a decode: every transformer block, the VAE decoder's."""
    decoder = pipe.vae.decoder
    return [*pipe.transformer.transformer_blocks, decoder.mid_block, *decoder.up_blocks]


@contextmanager
def cancel_points(blocks: Iterable[torch.nn.Module], should_cancel: CancelFn,
                  where: Callable[[], str]) -> Iterator[None]:
    """While inside, every call of one of `blocks` first checks should_cancel(); where() names the stage."""

    def check(module, args) -> None:
        if should_cancel():
            raise Cancelled(f"cancelled inside {where()}")

    handles = [block.register_forward_pre_hook(check) for block in blocks]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
