"""``TextEnum``: the base of the project's string enums (statuses, event kinds, preview modes)."""

from __future__ import annotations

from enum import Enum


class TextEnum(str, Enum):
    """A string enum that compares, hashes, serialises and prints as its value.

    ``enum.StrEnum`` does this from Python 3.11 on; the project supports 3.10,
    where ``format()`` of a str-mixin enum would print ``Class.MEMBER`` in
    reports and messages.
    """

    def __str__(self) -> str:
        return str(self.value)


__all__ = ["TextEnum"]
