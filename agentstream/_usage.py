"""Token usage as servers report it, summed over steps."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Usage"]


def _count(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _detail(data: Mapping[str, Any], group: str, key: str) -> int:
    details = data.get(group)
    return _count(details, key) if isinstance(details, Mapping) else 0


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
        """Read the `usage` object of a chunk; missing or odd fields count as 0."""
        prompt = _count(data, "prompt_tokens")
        completion = _count(data, "completion_tokens")
        total = _count(data, "total_tokens") or prompt + completion
        return cls(
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=total,
            reasoning_tokens=_detail(data, "completion_tokens_details", "reasoning_tokens"),
            cached_tokens=_detail(data, "prompt_tokens_details", "cached_tokens"),
        )

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
