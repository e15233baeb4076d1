"""Toolsets: the tools an agent offers, made of plain tools and live collections of them."""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from .._exceptions import ToolDefinitionError
from ._tool import Tool, tool

__all__ = ["ToolCatalog", "Toolset", "build_toolset", "merge_toolsets", "split_tools"]

logger = logging.getLogger("agentstream")


@runtime_checkable
class Toolset(Protocol):
    """A collection of tools that may change while an agent uses it.

    Give one to `Agent(tools=[...])` beside plain tools: the agent reads its `tools`
    again at every step, so tools it adds or drops (an MCP server's, say) are offered
    from the next request on. `tools` should return the same sequence object for as
    long as it has not changed, which lets the agent skip rebuilding its list.
    """

    @property
    def tools(self) -> Sequence[Tool]:
        """The tools offered now."""
        ...


def split_tools(
    items: Iterable[Tool | Toolset | Callable[..., Any]],
) -> tuple[dict[str, Tool], tuple[Toolset, ...]]:
    """Plain tools by name (callables wrapped with `tool()`), and the live toolsets apart."""
    plain: list[Tool] = []
    toolsets: list[Toolset] = []
    for item in items:
        if isinstance(item, Tool):
            plain.append(item)
        elif not callable(item) and isinstance(item, Toolset):
            toolsets.append(item)
        else:
            plain.append(tool(item))
    return build_toolset(plain), tuple(toolsets)


def build_toolset(tools: Iterable[Tool | Callable[..., Any]]) -> dict[str, Tool]:
    """Tools by name; plain callables are wrapped with `tool()`. Names must be unique."""
    toolset: dict[str, Tool] = {}
    for item in tools:
        made = item if isinstance(item, Tool) else tool(item)
        _add_unique(toolset, made)
    return toolset


def merge_toolsets(plain: Mapping[str, Tool], current: Iterable[Sequence[Tool]]) -> dict[str, Tool]:
    """`plain` and then the tools of each toolset, by name. Names must be unique.

    A toolset whose tool sequence has `gives_way = True` (a remote server's, whose list
    can change at any moment) does not fail the agent on a clash: its clashing tool is
    left out, with a warning.
    """
    merged = dict(plain)
    for tools in current:
        gives_way = getattr(tools, "gives_way", False) is True
        for item in tools:
            if not isinstance(item, Tool):
                raise ToolDefinitionError(f"a toolset offered {item!r:.80}, which is not a Tool")
            if gives_way and item.name in merged:
                logger.warning("a toolset's tool %r is left out: the name is taken", item.name)
                continue
            _add_unique(merged, item)
    return merged


def _add_unique(toolset: dict[str, Tool], item: Tool) -> None:
    if item.name in toolset:
        raise ToolDefinitionError(f"two tools are named {item.name!r}; tool names must be unique")
    toolset[item.name] = item


class ToolCatalog:
    """The tools an agent offers: its plain tools, then each toolset's current ones.

    Read again at every step of a run, so a toolset's changes reach the next request;
    the merged table and the request's `tools` list are made again only on a change.
    """

    __slots__ = ("_definitions", "_merged", "_plain", "_toolsets")

    def __init__(self, items: Iterable[Tool | Toolset | Callable[..., Any]]) -> None:
        self._plain, self._toolsets = split_tools(items)
        self._merged: tuple[tuple[Sequence[Tool], ...], dict[str, Tool]] = ((), self._plain)
        self._definitions: tuple[tuple[Tool, ...], list[dict[str, Any]]] = ((), [])
        _ = self.tools  # two toolsets offering one name fail here rather than in a run

    @property
    def plain(self) -> dict[str, Tool]:
        return self._plain

    @property
    def toolsets(self) -> tuple[Toolset, ...]:
        return self._toolsets

    @property
    def tools(self) -> dict[str, Tool]:
        """The tools offered now, by name."""
        if not self._toolsets:
            return self._plain
        current = tuple(toolset.tools for toolset in self._toolsets)
        seen, merged = self._merged
        if len(seen) != len(current) or any(map(operator.is_not, seen, current)):
            merged = merge_toolsets(self._plain, current)
            self._merged = (current, merged)
        return merged

    def definitions(self) -> list[dict[str, Any]]:
        """The request's `tools` list, made again only when `tools` has changed."""
        tools = tuple(self.tools.values())
        if tools != self._definitions[0]:
            self._definitions = (tools, [tool.definition for tool in tools])
        return self._definitions[1]
