"""Swap Blender settings for an export and put every one back, even on error.

The user's render settings, pass indices, frame and active scene must be exactly as before an
export. Rather than copying the scene (copied scenes do not animate shared objects without a
context override), we set what the export needs on the user's own scene and record the old value
of each property the first time we touch it; `restore()` writes them back in reverse order.
"""

from __future__ import annotations

from typing import Any

# image_settings properties whose order matters: media_type re-derives file_format (and the
# format re-derives depth/codec), so they are restored first-to-last in this order.
_IMAGE_ORDER = ("media_type", "file_format", "color_mode", "color_depth", "exr_codec")


class SettingsSwap:
    """Context manager: `swap.set(owner, "attr", value)` now, original values restored on exit.

    Owners are bpy structs (scene.render, scene.cycles, objects...). Restoring is best effort per
    property: one failure does not stop the others; the first error is re-raised at the end.
    """

    def __init__(self) -> None:
        self._saved: list[tuple[Any, str, Any]] = []
        self._seen: set[tuple[int, str]] = set()
        self._frame: tuple[Any, int, float] | None = None

    def remember(self, owner: Any, attr: str) -> None:
        """Record the current value of owner.attr (once) without changing it."""
        key = (owner.as_pointer() if hasattr(owner, "as_pointer") else id(owner), attr)
        if key not in self._seen:
            self._seen.add(key)
            self._saved.append((owner, attr, _copy(getattr(owner, attr))))

    def set(self, owner: Any, attr: str, value: Any) -> None:
        self.remember(owner, attr)
        if getattr(owner, attr) != value:
            setattr(owner, attr, value)

    def set_image_settings(self, image_settings: Any, **values: Any) -> None:
        """Set image format properties in Blender's required order (media_type before file_format).

        All of them are recorded first: changing media_type silently changes the file format and
        depth, so recording them one at a time would save already-changed values.
        """
        for attr in _IMAGE_ORDER:
            self.remember(image_settings, attr)
        for attr in _IMAGE_ORDER:
            if attr in values:
                self.set(image_settings, attr, values.pop(attr))
        for attr, value in values.items():
            self.set(image_settings, attr, value)

    def keep_frame(self, scene: Any) -> None:
        """Remember the scene's current frame (and subframe) to return to on restore."""
        if self._frame is None:
            self._frame = (scene, scene.frame_current, scene.frame_subframe)

    def restore(self) -> None:
        errors: list[Exception] = []
        # Restore image settings first-to-last (dependent order), everything else last-to-first.
        ordered = [s for s in reversed(self._saved) if s[1] not in _IMAGE_ORDER]
        image = [s for s in self._saved if s[1] in _IMAGE_ORDER]
        image.sort(key=lambda s: _IMAGE_ORDER.index(s[1]))
        for owner, attr, value in ordered + image:
            try:
                if getattr(owner, attr) != value:
                    setattr(owner, attr, value)
            except Exception as exc:  # keep restoring the rest
                errors.append(exc)
        self._saved.clear()
        self._seen.clear()
        if self._frame is not None:
            scene, frame, subframe = self._frame
            self._frame = None
            try:
                scene.frame_set(frame, subframe=subframe)
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise RuntimeError(f"could not restore {len(errors)} setting(s) after the export: {errors[0]}")

    def __enter__(self) -> SettingsSwap:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.restore()
        except RuntimeError:
            if exc_type is None:
                raise  # an export error in flight is the more useful one to show


def _copy(value: Any) -> Any:
    # bpy arrays (colours, vectors) are live views: keep a snapshot, not the view.
    if hasattr(value, "__len__") and not isinstance(value, str) and hasattr(value, "__getitem__"):
        try:
            return tuple(value)
        except TypeError:
            return value
    return value
