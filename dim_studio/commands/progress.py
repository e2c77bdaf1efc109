"""A tqdm progress bar for fractional progress callbacks."""

from __future__ import annotations

import sys
from types import TracebackType

from tqdm import tqdm


class ProgressBar:
    """Context manager whose ``update(fraction)`` drives a 0-100 % bar on stderr."""

    def __init__(self, description: str, enabled: bool = True) -> None:
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
