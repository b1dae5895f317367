"""Put a rendered take into the Video Sequence Editor: a movie strip and a sound strip at the
shot's first frame, in sync.

Blender 5.0 calls the strip collection `strips`; 4.2-4.x call it `sequences`. Each strip gets
the custom property "ltx_take" (the take folder) so importing the same take again reuses
its strips instead of stacking duplicates.
"""

from __future__ import annotations

from pathlib import Path

import bpy

TAKE_KEY = "ltx_take"
SCRATCH_CHANNEL = 128  # the sequencer's last channel (4.2-5.0)


def _strips(scene: bpy.types.Scene):
    editor = scene.sequence_editor or scene.sequence_editor_create()
    return editor.strips if hasattr(editor, "strips") else editor.sequences


def _all_strips(scene: bpy.types.Scene):
    editor = scene.sequence_editor
    if editor is None:
        return []
    return list(editor.strips_all if hasattr(editor, "strips_all") else editor.sequences_all)


def take_strips(scene: bpy.types.Scene, take_dir: str | Path) -> list:
    """Strips already imported from this take folder."""
    key = str(Path(take_dir).resolve())
    return [s for s in _all_strips(scene) if s.get(TAKE_KEY) == key]


def fps_settings(fps: float) -> tuple[int, float]:
    """(scene.render.fps, fps_base) that play at `fps`: 24 -> (24, 1.0), 23.976 -> (24, 1.001)."""
    if fps <= 0:
        raise ValueError(f"fps must be positive (got {fps})")
    whole = max(1, round(fps))
    base = whole / fps
    return whole, (1.0 if abs(base - 1.0) < 1e-6 else round(base, 6))


def _free_channel(scene: bpy.types.Scene, start: int, end: int, height: int = 2, ignore=None) -> int:
    """Lowest channel c such that channels c..c+height-1 are empty over [start, end)."""
    busy = set()
    for s in _all_strips(scene):
        if s != ignore and s.frame_final_start < end and s.frame_final_end > start:
            busy.add(s.channel)
    channel = 1
    while any(c in busy for c in range(channel, channel + height)):
        channel += 1
    return channel


def import_take(scene: bpy.types.Scene, take_dir: str | Path, frame_start: int, name: str,
                audio: bool = True, trim_start: int = 0, trim_end: int = 0,
                display_size: tuple[int, int] | None = None) -> list:
    """Add the take's video (and sound) at `frame_start`; returns [movie, sound?].

    trim_start/trim_end hide frames at either end (the overlap a previous shot already shows,
    frames rendered past the range); the strips still start at frame_start, so they stay in sync.

    The scene fps is set to the movie's before the sound strip is added: a sound strip's
    length is computed from the scene fps when it is created, so the other order drifts.

    display_size: (width, height) in pixels the movie should cover in the scene's output (a Preview
    take, rendered at half size, covers what its Final take would); None = the movie's own size.
    """
    take_dir = Path(take_dir).resolve()
    existing = take_strips(scene, take_dir)
    if existing:
        return sorted(existing, key=lambda s: s.type != "MOVIE")
    video = take_dir / "video.mp4"
    if not video.is_file():
        raise FileNotFoundError(f"{video} missing: the take was not downloaded; press Resume to fetch it")
    strips = _strips(scene)
    # Add on the last channel to learn the length, then move down to the lowest channel pair
    # that is free over exactly that range (other takes of the shot stack above).
    movie = strips.new_movie(name=name, filepath=str(video), channel=SCRATCH_CHANNEL, frame_start=frame_start)
    if trim_start + trim_end >= movie.frame_duration:
        raise ValueError(f"trims {trim_start}+{trim_end} leave nothing of a {movie.frame_duration}-frame take")
    movie.frame_offset_start, movie.frame_offset_end = trim_start, trim_end
    channel = _free_channel(scene, movie.frame_final_start, movie.frame_final_end, ignore=movie)
    movie.channel = channel
    movie[TAKE_KEY] = str(take_dir)
    if display_size:
        _scale_to(movie, display_size)
    if movie.fps > 0:
        want = fps_settings(movie.fps)
        if (scene.render.fps, round(scene.render.fps_base, 6)) != want:
            scene.render.fps, scene.render.fps_base = want
    result = [movie]
    if audio:
        wav = take_dir / "audio.wav"
        sound = strips.new_sound(name=f"{name} audio", filepath=str(wav if wav.is_file() else video),
                                 channel=channel + 1, frame_start=frame_start)
        sound.frame_offset_start, sound.frame_offset_end = trim_start, trim_end
        sound[TAKE_KEY] = str(take_dir)
        result.append(sound)
    return result


def _scale_to(movie, display_size: tuple[int, int]) -> None:
    """Scale the movie strip so its frames cover display_size pixels of the scene's output."""
    elements = getattr(movie, "elements", None)
    element = elements[0] if elements else None
    width = getattr(element, "orig_width", 0) if element is not None else 0
    height = getattr(element, "orig_height", 0) if element is not None else 0
    if width and height:
        movie.transform.scale_x = display_size[0] / width
        movie.transform.scale_y = display_size[1] / height
