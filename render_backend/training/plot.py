"""The loss curve as a PNG, drawn with Pillow (already a dependency; no plotting library needed).

Grey: the training loss of every step; blue: its running mean; red dots: the held-out loss (fixed
sigmas and noise, so it moves only when the LoRA does). Log-scaled y axis when the losses span more
than a factor of 10.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..media import write_bytes_atomic

SIZE = (800, 450)
MARGIN = (70, 20, 20, 50)  # left, top, right, bottom
GREY, BLUE, RED, INK = (190, 190, 190), (40, 90, 200), (210, 40, 40), (30, 30, 30)


def running_mean(values: list[float], window: int = 10) -> list[float]:
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def plot_losses(path: str | Path, train: list[tuple[int, float]], heldout: list[tuple[int, float]],
                title: str = "") -> Path:
    """train, heldout: (step, loss) pairs. Writes the PNG atomically and returns its path."""
    import io

    from PIL import Image, ImageDraw

    img = Image.new("RGB", SIZE, "white")
    draw = ImageDraw.Draw(img)
    left, top, right, bottom = MARGIN[0], MARGIN[1], SIZE[0] - MARGIN[2], SIZE[1] - MARGIN[3]
    values = [v for _, v in train + heldout if v > 0 and math.isfinite(v)]
    steps = [s for s, _ in train + heldout]
    if values:
        lo, hi = min(values), max(values)
        log = hi / lo > 10
        f = (lambda v: math.log10(v)) if log else (lambda v: v)  # noqa: E731
        y0, y1 = f(lo), f(hi)
        if y1 - y0 < 1e-12:
            y0, y1 = y0 - 0.5, y1 + 0.5
        s0, s1 = min(steps), max(max(steps), min(steps) + 1)

        def xy(step, value):
            x = left + (step - s0) / (s1 - s0) * (right - left)
            y = bottom - (f(max(value, lo)) - y0) / (y1 - y0) * (bottom - top)
            return x, y

        if len(train) > 1:
            draw.line([xy(s, v) for s, v in train], fill=GREY, width=1)
            mean = running_mean([v for _, v in train])
            draw.line([xy(s, v) for (s, _), v in zip(train, mean, strict=True)], fill=BLUE, width=2)
        for s, v in heldout:
            x, y = xy(s, v)
            draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=RED)
        for k in range(5):  # y ticks
            value = y0 + (y1 - y0) * k / 4
            label = f"{10 ** value:.3g}" if log else f"{value:.3g}"
            y = bottom - (bottom - top) * k / 4
            draw.line([(left - 4, y), (left, y)], fill=INK)
            draw.text((4, y - 6), label, fill=INK)
        for k in range(5):  # x ticks
            step = s0 + (s1 - s0) * k / 4
            x = left + (right - left) * k / 4
            draw.line([(x, bottom), (x, bottom + 4)], fill=INK)
            draw.text((x - 10, bottom + 8), f"{step:.0f}", fill=INK)
    draw.rectangle([left, top, right, bottom], outline=INK)
    draw.text((left, SIZE[1] - 18), "step   (grey: loss, blue: running mean, red: held-out loss)", fill=INK)
    if title:
        draw.text((left + 6, top + 4), title, fill=INK)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return write_bytes_atomic(path, buf.getvalue())
