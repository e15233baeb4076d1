"""The command line: the demo chat, `replay`, `serve-model`, and the entry to the bench.

`python -m agentstream` and the `agentstream` script call `main()`. What lives here is
tooling for people at a terminal: the demo and its renderer (`_demo`, `_render`), the
recorded-stream replayer (`_replay`), the loader of `--tools` and of the demo tools
(`_loader`). It may import the core, `agentstream.testing` (the offline model) and
`agentstream.bench`; nothing in the core imports it.
"""

from __future__ import annotations

from ._main import main as main

__all__ = ["main"]
