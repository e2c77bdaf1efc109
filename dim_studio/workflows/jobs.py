"""What every job gets and how its failures read: ``JobContext``, ``EngineCache``, ``JobError``."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

from ..engines import Engine, create_engine
from ..errors import DimStudioError

ProgressSink = Callable[[float], None]
PartialSink = Callable[[Any], None]

EngineKey = tuple[str, tuple[tuple[str, Any], ...]]


class EngineCache:
    """Engines by (name, options), created on first use and kept (a few at most).

    Keeping the engine keeps the network's weights loaded between jobs; the
    cap stops switching engines back and forth from filling the GPU. ``clear``
    is called when the weights change, so the next job builds a fresh engine.
    """

    def __init__(self, capacity: int = 2) -> None:
        self._capacity = capacity
        self._engines: OrderedDict[EngineKey, Engine] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(name: str, options: dict[str, Any]) -> EngineKey:
        return name, tuple(sorted((k, v) for k, v in options.items() if v is not None))

    def get(self, name: str, options: dict[str, Any] | None = None) -> Engine:
        key = self.key(name, options or {})
        with self._lock:
            engine = self._engines.get(key)
            if engine is not None:
                self._engines.move_to_end(key)
                return engine
        # Created outside the lock: loading weights can take seconds.
        engine = create_engine(name, **dict(key[1]))
        with self._lock:
            self._engines[key] = engine
            while len(self._engines) > self._capacity:
                self._engines.popitem(last=False)
        return engine

    def clear(self) -> None:
        with self._lock:
            self._engines.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._engines)


def _ignore(_value: Any) -> None:
    return None


def _never() -> bool:
    return False


@dataclass
class JobContext:
    """A running job's links to whoever runs it.

    ``cancelled`` is the ``cancel=`` callable handed to engines; ``progress``
    takes a fraction in [0, 1]; ``partial`` hands an intermediate result (a
    batch event, the alpha before its foreground) to the front end.
    """

    cancelled: Callable[[], bool] = _never
    progress: ProgressSink = _ignore
    partial: PartialSink = _ignore
    engines: EngineCache = field(default_factory=EngineCache)

    @classmethod
    def standalone(
        cls, *, progress: ProgressSink | None = None, partial: PartialSink | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> "JobContext":
        """A context for a job run directly (the CLI): its own engine cache."""
        return cls(cancelled or _never, progress or _ignore, partial or _ignore)


@dataclass(frozen=True)
class JobError:
    """A failed job, ready for an error dialog or a one-line CLI message."""

    title: str
    message: str
    exception_type: str


def describe_exception(exc: BaseException) -> JobError:
    """Turn any exception into a message a user can act on.

    DimStudioError messages are written for users and are shown as they are;
    memory errors get advice; anything else shows its type and message (a bug,
    but the user still learns what failed and the program keeps running).
    """
    name = type(exc).__name__
    text = str(exc).strip()
    if isinstance(exc, DimStudioError):
        return JobError("Matting failed", text or name, name)
    if isinstance(exc, MemoryError) or "out of memory" in text.lower():
        return JobError(
            "Out of memory",
            "There was not enough memory to matte this photo"
            + (f" ({text})" if text else "")
            + ". Narrow the unknown band, choose a lower preview resolution, "
            "or use the CPU or a lighter engine.",
            name,
        )
    return JobError("Unexpected error", f"{name}: {text}" if text else name, name)


__all__ = ["EngineCache", "JobContext", "JobError", "describe_exception"]
