"""tqdm progress bars: for fractional progress callbacks, and for training steps."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any, Callable


class ProgressBar:
    """Context manager whose ``update(fraction)`` drives a 0-100 % bar on stderr."""

    def __init__(self, description: str, enabled: bool = True) -> None:
        from tqdm import tqdm  # not at import: the command line's --help must stay fast

        self._bar = tqdm(
            total=100, desc=description, unit="%", leave=False, file=sys.stderr,
            disable=not enabled or not sys.stderr.isatty(),
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}",
        )

    def update(self, fraction: float) -> None:
        target = int(round(100 * min(1.0, max(0.0, fraction))))
        if target > self._bar.n:
            self._bar.update(target - self._bar.n)

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._bar.close()


class StepBar:
    """A bar of training steps fed by progress updates (``TrainProgress``, ``FinetuneProgress``).

    Created on the first step (its total and start come from it); an update
    with a ``message`` is printed above the bar instead. ``postfix(update)``
    names what to show beside the count (loss, images/s, best SAD).
    """

    def __init__(self, enabled: bool, postfix: Callable[[Any], dict[str, str]]) -> None:
        self._enabled = enabled
        self._postfix = postfix
        self._bar: Any = None

    def __call__(self, update: Any) -> None:
        if update.message is not None:
            write = self._bar.write if self._bar is not None else print
            write(f"dim-studio: {update.message}", file=sys.stderr)
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=update.total, initial=update.step, unit="step", file=sys.stderr,
                             disable=not self._enabled, dynamic_ncols=True)
        self._bar.update(update.step - self._bar.n)
        self._bar.set_postfix(self._postfix(update), refresh=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
