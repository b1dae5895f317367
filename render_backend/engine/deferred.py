"""An engine built on the server's model-load thread, so `serve` listens before torch is imported.

`render-backend serve` opens its port first (health NOT_SERVING) and only then pays for torch,
diffusers and the weights. The engine class's module imports torch at its top, so the engine
object itself is made in `load()`, on the load thread; until then the server only asks `loaded`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional


class DeferredEngine:
    """Stands for `factory()`'s engine: `load()` builds and loads it; everything else is the engine's.

    on_invalid(message) is told when the factory rejects its flags (SystemExit, e.g. an --upsampler
    path that is not one), so `serve` can exit with that message as it did before it deferred.
    """

    def __init__(self, factory: Callable[[], Any], on_invalid: Optional[Callable[[str], None]] = None):
        self._factory = factory
        self._on_invalid = on_invalid
        self._engine: Any = None

    @property
    def loaded(self) -> bool:
        return self._engine is not None and bool(getattr(self._engine, "loaded", False))

    def load(self) -> None:
        if self._engine is None:
            try:
                self._engine = self._factory()
            except SystemExit as e:
                if self._on_invalid is not None:
                    self._on_invalid(str(e))
                raise RuntimeError(str(e)) from None
        self._engine.load()

    def __getattr__(self, name: str) -> Any:
        engine = self.__dict__.get("_engine")
        if engine is None:
            raise AttributeError(f"{name}: the engine is not built yet (the model is loading)")
        return getattr(engine, name)
