"""Shot planning: the model's frame and size rules, and cutting long ranges into shots.

LTX-2 needs 8k+1 frames and width/height multiples of 32 (64 for two-stage). These helpers
snap what the artist asked for and say, in one sentence, what changed and why.
"""

from __future__ import annotations

from dataclasses import dataclass

FRAME_STEP = 8
MIN_FRAMES = FRAME_STEP + 1  # shortest video: 9 frames


def _is_valid_frames(n: int) -> bool:
    return n >= 1 and (n - 1) % FRAME_STEP == 0


def _frames_at_least(n: int) -> int:
    """Smallest 8k+1 >= max(n, 9)."""
    n = max(n, MIN_FRAMES)
    return n + (-(n - 1)) % FRAME_STEP


def snap_frames(n: int) -> tuple[int, str]:
    """Nearest valid frame count 8k+1 not above n (9 when n < 9), and a message ("" if unchanged)."""
    if n < 1:
        raise ValueError(f"a shot needs at least 1 frame (got {n}); set the frame range so end >= start")
    if n < MIN_FRAMES:
        return MIN_FRAMES, (
            f"frames must be 8k+1 and at least {MIN_FRAMES} (got {n}); rendering {MIN_FRAMES}, "
            f"{MIN_FRAMES - n} frame(s) past the end of the range"
        )
    if _is_valid_frames(n):
        return n, ""
    snapped = n - (n - 1) % FRAME_STEP
    return snapped, (
        f"frames must be 8k+1 (got {n}); using {snapped}, the last {n - snapped} frame(s) are dropped "
        f"(or extend the range to {snapped + FRAME_STEP})"
    )


def frames_error(n: int) -> str:
    """Why n frames cannot be rendered as they are ("" when n is 8k+1 and at least 9), with the
    nearest count to use instead (snap_frames)."""
    snapped, why = snap_frames(n)
    return "" if not why else f"frames must be 8k+1 and at least {MIN_FRAMES} (got {n}); try {snapped}"


def _round_to(value: float, multiple: int) -> int:
    return max(multiple, int(value / multiple + 0.5) * multiple)  # half rounds up, not to even


def snap_size(
    width: int,
    height: int,
    multiple: int = 32,
    max_width: int | None = None,
    max_height: int | None = None,
) -> tuple[int, int, str]:
    """(width, height, message): each side rounded to the nearest multiple, after scaling down
    (both sides by one factor, keeping the aspect) to fit max_width/max_height. "" if unchanged."""
    if width < 1 or height < 1:
        raise ValueError(f"size must be positive (got {width}x{height})")
    if multiple < 1:
        raise ValueError(f"multiple must be >= 1 (got {multiple})")
    for name, limit in (("max_width", max_width), ("max_height", max_height)):
        if limit is not None and limit < multiple:
            raise ValueError(f"{name} must be at least {multiple} (got {limit})")
    scale = 1.0
    if max_width is not None and width > max_width:
        scale = min(scale, max_width / width)
    if max_height is not None and height > max_height:
        scale = min(scale, max_height / height)
    new_w = _round_to(width * scale, multiple)
    new_h = _round_to(height * scale, multiple)
    # Rounding up may cross the limit again: step down to the largest multiple that fits.
    if max_width is not None and new_w > max_width:
        new_w = max_width // multiple * multiple
    if max_height is not None and new_h > max_height:
        new_h = max_height // multiple * multiple
    if (new_w, new_h) == (width, height):
        return width, height, ""
    reasons = [f"width and height must be multiples of {multiple}"]
    if scale < 1.0:
        reasons.insert(0, f"the server's maximum is {max_width or '-'}x{max_height or '-'}")
    return new_w, new_h, f"{' and '.join(reasons)} (got {width}x{height}); using {new_w}x{new_h}"


@dataclass(frozen=True)
class ShotPlan:
    """One model-sized shot of a longer range; Blender frame numbers, inclusive.

    When stitching, drop `trim_start` frames from the start (already covered by the previous
    shot: the overlap) and `trim_end` frames from the end (rendered past the range only because
    the model needs 8k+1 frames).
    """

    frame_start: int
    frame_end: int
    num_frames: int
    trim_start: int = 0
    trim_end: int = 0

    @property
    def kept_frames(self) -> range:
        """Blender frames this shot contributes to the stitched result."""
        return range(self.frame_start + self.trim_start, self.frame_end - self.trim_end + 1)


def plan_shots(frame_start: int, frame_end: int, max_frames: int = 121, overlap: int = 8) -> list[ShotPlan]:
    """Cut [frame_start, frame_end] into 8k+1 shots of at most `max_frames` that overlap by at
    least `overlap` frames. Every frame of the range is kept exactly once after trimming.

    The last shot is moved earlier (more overlap) so it ends exactly at frame_end; a range
    shorter than one valid shot is rendered a little past its end (trim_end).
    """
    if frame_end < frame_start:
        raise ValueError(f"frame_end ({frame_end}) is before frame_start ({frame_start}); fix the frame range")
    if max_frames < MIN_FRAMES or not _is_valid_frames(max_frames):
        raise ValueError(f"max_frames must be 8k+1 and at least {MIN_FRAMES} (got {max_frames}); try 121")
    if not 0 <= overlap <= max_frames - MIN_FRAMES:
        raise ValueError(f"overlap must be between 0 and {max_frames - MIN_FRAMES} frames (got {overlap})")
    total = frame_end - frame_start + 1
    if total <= max_frames:
        n = _frames_at_least(total)
        return [ShotPlan(frame_start, frame_start + n - 1, n, 0, n - total)]
    shots = [ShotPlan(frame_start, frame_start + max_frames - 1, max_frames)]
    while shots[-1].frame_end < frame_end:
        prev_end = shots[-1].frame_end
        start = prev_end - overlap + 1
        if start + max_frames - 1 < frame_end:
            shots.append(ShotPlan(start, start + max_frames - 1, max_frames, overlap))
            continue
        n = _frames_at_least(frame_end - prev_end + overlap)
        start = frame_end - n + 1
        shots.append(ShotPlan(start, frame_end, n, prev_end - start + 1))
    return shots


def fps_from_scene(fps: int, fps_base: float) -> float:
    """Frames per second as Blender plays them: scene.render.fps / scene.render.fps_base."""
    if fps <= 0 or fps_base <= 0:
        raise ValueError(f"scene fps and fps_base must be positive (got fps={fps}, fps_base={fps_base})")
    return fps / fps_base


def size_error(width: int, height: int, multiple: int = 32) -> str:
    """Why width x height is not a model size ("" when both are multiples of `multiple`), with
    the nearest size to use instead (snap_size)."""
    new_w, new_h, why = snap_size(width, height, multiple)
    return "" if not why else (f"width and height must be multiples of {multiple} (got {width}x{height}); "
                               f"try {new_w}x{new_h}")
