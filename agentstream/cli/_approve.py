"""`--approve`: how the command line decides on calls that need a person's approval."""

from __future__ import annotations

import json
from typing import TextIO

import anyio.to_thread

from ..state._approvals import Approval, ApprovalRequest, Approver

__all__ = ["approver"]

NO_TERMINAL = "no terminal to ask on: run with --approve yes or --approve no"


def approver(mode: str, stdin: TextIO, out: TextIO) -> Approver:
    """`ask` on the terminal, or approve (`yes`) or deny (`no`) every call."""
    if mode == "yes":
        return lambda request: Approval.approve()
    if mode == "no":
        return lambda request: Approval.deny("denied by --approve no")

    async def ask(request: ApprovalRequest) -> Approval:
        if not stdin.isatty():
            return Approval.deny(NO_TERMINAL)
        # input() blocks: it waits in a worker thread, which Ctrl-C abandons.
        return await anyio.to_thread.run_sync(
            _ask_terminal, request, stdin, out, abandon_on_cancel=True
        )

    return ask


def _ask_terminal(request: ApprovalRequest, stdin: TextIO, out: TextIO) -> Approval:
    arguments = json.dumps(request.arguments, ensure_ascii=False, default=str)
    out.write(f"\nallow {request.tool} {arguments}? [y/n] ")
    out.flush()
    answer = stdin.readline()
    if answer.strip().lower() in ("y", "yes"):
        return Approval.approve()
    if not answer:  # end of input
        return Approval.deny("no answer")
    out.write("reason (optional, Enter to skip): ")
    out.flush()
    reason = stdin.readline().strip()
    return Approval.deny(reason or None)
