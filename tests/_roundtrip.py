"""The round-trip cases (`tests/recordings/roundtrip`) and how to replay and check them.

Each case is a streamed assistant turn from a real server and what the next request must
carry back (see the folder's README.md). `replay_through_cli` serves the case's streams
verbatim from a scripted model on loopback, runs `python -m agentstream` against it once
per prompt (one session, so a second prompt is a later user turn of the same chat), and
returns the request bodies the model received. `resolve` reads a case's paths
(`a.b`, `[N]`, `[key=value]`, `assistant[N].`) in them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio.from_thread

from agentstream.testing import Reply, ScriptedModel, serve

from ._streams import HERE, _merged, _shared

ROUNDTRIP = HERE / "recordings" / "roundtrip"
"""The in-repository round-trip cases."""
ROOT = HERE.parent

_SHARED = _shared("roundtrip")
CASES, _ = _merged(ROUNDTRIP, _SHARED)

_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL", "NO_COLOR")
_ANSWER = "All done."


def case_params(api: str) -> list[Any]:
    """One pytest.param per case of the wire `api` (`chat` or `responses`)."""
    import pytest

    return [pytest.param(name, id=name) for name in sorted(CASES) if CASES[name]["api"] == api]


def served_lines(file: str) -> list[str]:
    """A served stream's payloads, each exactly as recorded."""
    path = ROUNDTRIP / file
    if not path.is_file() and _SHARED is not None:
        path = _SHARED / file
    return [line for line in path.read_text().splitlines() if line.strip()]


def write_tools(case: Mapping[str, Any], folder: Path) -> Path:
    """A tools file for `--tools`: one tool per schema of `request_1` (or per result named
    without one), each answering its `tool_results` text."""
    schemas = {tool["name"]: tool["parameters"] for tool in case["request_1"].get("tools", [])}
    results = case["run"]["tool_results"]
    for name in results:
        schemas.setdefault(name, {"type": "object"})
    data = folder / "roundtrip_tools.json"
    data.write_text(json.dumps({"schemas": schemas, "results": results}))
    module = folder / "roundtrip_tools.py"
    module.write_text(
        "import json\n"
        "from pathlib import Path\n"
        "from agentstream import Tool\n"
        "_DATA = json.loads(Path(__file__).with_suffix('.json').read_text())\n"
        "def _answer(name):\n"
        "    return lambda arguments: _DATA['results'].get(name, 'no result recorded')\n"
        "TOOLS = [Tool.from_schema(n, s, _answer(n)) for n, s in _DATA['schemas'].items()]\n"
        "for _number, _tool in enumerate(TOOLS):\n"
        "    globals()[f'tool_{_number}'] = _tool\n"
    )
    return module


@contextmanager
def scripted_server(replies: Sequence[Reply]) -> Iterator[tuple[ScriptedModel, str]]:
    """A scripted model serving `replies` on loopback: the model and its base URL."""
    model = ScriptedModel(list(replies))
    with anyio.from_thread.start_blocking_portal() as portal:
        future, port = portal.start_task(serve, model)
        try:
            yield model, f"http://127.0.0.1:{port}/v1"
        finally:
            future.cancel()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in _ENV}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "agentstream", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def replay_through_cli(
    case: Mapping[str, Any], folder: Path, prompts: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Run the case's recipe through the command line; the request bodies received."""
    run = case["run"]
    prompts = list(prompts if prompts is not None else run["prompts"])
    replies = [Reply(chunks=served_lines(file)) for file in run["serve"]]
    replies += [Reply(_ANSWER) for _ in prompts]
    tools = write_tools(case, folder)
    session = folder / "session.sqlite"
    with scripted_server(replies) as (model, url):
        for prompt in prompts:
            done = run_cli(
                "-p", prompt, "--json", "--model", case["model"], "--base-url", url,
                "--api-key", "roundtrip-key", "--api", run.get("api", "chat"),
                "--tools", str(tools), "--max-retries", "0", "--approve", "no",
                "--session", str(session),
            )  # fmt: skip
            assert done.returncode == 0, done.stderr[-2000:]
        bodies = [request.body for request in model.requests]
    assert len(bodies) == len(replies), "every served stream must have been asked for"
    return [body for body in bodies if isinstance(body, dict)]


_PART = re.compile(r"\[([^\]]*)\]|([^.\[\]]+)")


class Missing(LookupError):
    """A path leads nowhere."""


def resolve(body: Mapping[str, Any], path: str, api: str = "chat") -> Any:
    """The value at a case's `path` in a request body (raises `Missing`).

    Chat paths start at the first assistant message, or at the Nth with `assistant[N].`;
    Responses paths start at the body.
    """
    current: Any = body
    if api == "chat":
        assistants = [m for m in body.get("messages", []) if m.get("role") == "assistant"]
        number = 0
        start = re.match(r"assistant\[(\d+)\]\.", path)
        if start:
            number, path = int(start.group(1)), path[start.end() :]
        if number >= len(assistants):
            raise Missing(f"no assistant message {number}")
        current = assistants[number]
    for index, name in _PART.findall(path):
        current = _step(current, index, name)
    return current


def _step(current: Any, index: str, name: str) -> Any:
    if name:
        if not isinstance(current, Mapping) or name not in current:
            raise Missing(name)
        return current[name]
    if not isinstance(current, list):
        raise Missing(f"[{index}] of a non-list")
    if "=" in index:
        key, value = index.split("=", 1)
        for item in current:
            if isinstance(item, Mapping) and str(item.get(key)) == value:
                return item
        raise Missing(f"[{index}]")
    if not index.isdigit() or int(index) >= len(current):
        raise Missing(f"[{index}]")
    return current[int(index)]
