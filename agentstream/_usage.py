"""Token usage as servers report it, summed over steps."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Usage"]


_FIELDS = (
    (None, "prompt_tokens"),
    (None, "completion_tokens"),
    (None, "total_tokens"),
    ("completion_tokens_details", "reasoning_tokens"),
    ("prompt_tokens_details", "cached_tokens"),
)
"""Where each count of `Usage` is in a chunk's `usage` object: (group, key)."""


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts; add two with `+`."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    reasoning_tokens: int = 0
    """Part of `completion_tokens` spent on reasoning, where the server says."""
    cached_tokens: int = 0
    """Part of `prompt_tokens` served from the server's cache, where the server says."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Usage:
        """Read the `usage` object of a chunk; missing or odd fields count as 0.

        One loop without helpers: it runs for each response.
        """
        counts = [0, 0, 0, 0, 0]
        for position, (group, key) in enumerate(_FIELDS):
            where = data if group is None else data.get(group)
            if where is not None and (type(where) is dict or isinstance(where, Mapping)):
                value = where.get(key)
                if isinstance(value, int) and not isinstance(value, bool):
                    counts[position] = value
        prompt, completion, total, reasoning, cached = counts
        return cls(prompt, completion, total or prompt + completion, reasoning, cached)

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.total_tokens + other.total_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            self.cached_tokens + other.cached_tokens,
        )
