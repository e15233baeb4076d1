"""`compile_report`: a slow, read-only tool that reports its progress and may start early."""

from __future__ import annotations

import hashlib

import anyio

from agentstream import ToolContext, tool

__all__ = ["compile_report"]

_SECTIONS = ("sources", "background", "figures", "risks", "outlook", "summary")
_SECONDS_PER_SECTION = 0.15  # the simulated work: under a second in all


@tool(early=True, idempotent=True)
async def compile_report(topic: str, ctx: ToolContext) -> str:
    """Compile a short research report on a topic (simulated offline, about a second).

    Args:
        topic: What the report is about, e.g. "solar panels".
    """
    lines: list[str] = []
    for number, section in enumerate(_SECTIONS):
        ctx.progress(number / len(_SECTIONS), f"writing {section}", "\n".join(lines))
        await anyio.sleep(_SECONDS_PER_SECTION)
        digest = hashlib.sha256(f"{topic}|{section}".lower().encode()).digest()
        lines.append(f"{section}: {digest[0] % 9 + 1} points on {topic}")
    report = "\n".join(lines)
    ctx.progress(1.0, "done", report)
    return report
