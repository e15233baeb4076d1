"""The command line: the demo chat, `replay`, `serve-model`, and the entry to the bench.

`python -m agentstream` and the `agentstream` script call `main()`. What lives here is
tooling for people at a terminal: the demo and its renderer (`_demo`, `_render`), the
recorded-stream replayer (`_replay`), the loader of `--tools` and of the demo tools
(`_loader`). It may import the core, `agentstream.testing` (the offline model) and
`agentstream.bench`; nothing in the core imports it.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import NoReturn

from ._main import main as main

__all__ = ["entry", "main"]


def entry() -> NoReturn:
    """`python -m agentstream` and the `agentstream` script: run, then exit at once.

    A sync tool still running in a worker thread (Ctrl-C abandoned it) would hold the
    interpreter at exit until it returned; its result is of no use now, so the process
    ends without waiting for it. Output closed early (`| head`) ends it quietly.
    """
    try:
        status = main()
        sys.stdout.flush()
    except BrokenPipeError:
        status = 141
    except KeyboardInterrupt:
        status = 130
    if status == 141:
        # Python would complain at exit that stdout cannot be flushed: point it at nothing.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    others = [t for t in threading.enumerate() if t is not threading.main_thread()]
    if any(t.is_alive() and not t.daemon for t in others):
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)
