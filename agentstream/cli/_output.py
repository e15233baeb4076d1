"""The command line's typed output: `--output-schema FILE` or `--output MODULE:Type`.

`ValueSink` is the output for scripts: the validated answer alone on stdout, as one
line of JSON, and every event passed on to the progress sink (on stderr).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

from pydantic_core import to_json

from .._events import Event, OutputReady, RunFinished
from .._exceptions import SetupError
from ..output._spec import OutputSpec, output_spec, schema_spec
from ._loader import import_spec
from ._render import EventSink

__all__ = ["ValueSink", "load_output"]


class ValueSink:
    """The validated answer alone on `out`; every event also goes to `progress`."""

    def __init__(self, out: TextIO, progress: EventSink) -> None:
        self._out = out
        self._progress = progress
        self._value: tuple[Any] | None = None  # boxed: the answer may be None itself
        self.printed = False
        """Whether the answer was printed (a run can stop without one)."""

    def handle(self, event: Event) -> None:
        self._progress.handle(event)
        if isinstance(event, OutputReady):
            self._value = (event.value,)
        elif (
            isinstance(event, RunFinished)
            and self._value is not None
            and event.result.stop_reason == "answer"
        ):
            self._out.write(to_json(self._value[0]).decode() + "\n")
            self._out.flush()
            self.printed = True

    def tick(self) -> None:
        self._progress.tick()

    def interrupted(self) -> None:
        self._progress.interrupted()

    def finish(self) -> None:
        self._progress.finish()


def load_output(schema_file: str | None, type_spec: str | None) -> OutputSpec | None:
    """The output the flags ask for, or None; `SetupError` saying what is wrong."""
    if schema_file is not None and type_spec is not None:
        raise SetupError("give --output-schema or --output, not both")
    if schema_file is not None:
        return _from_schema(Path(schema_file).expanduser())
    if type_spec is not None:
        return output_spec(_output_type(type_spec))
    return None


def _from_schema(path: Path) -> OutputSpec:
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SetupError(f"--output-schema {path}: cannot read it: {exc.strerror}") from None
    except ValueError as exc:
        raise SetupError(f"--output-schema {path}: not JSON: {exc}") from None
    if not isinstance(schema, dict):
        raise SetupError(f"--output-schema {path}: a JSON schema is an object")
    try:
        return schema_spec(schema, name=path.stem)
    except SetupError as exc:
        raise SetupError(f"--output-schema {path}: {exc}") from None


def _output_type(spec: str) -> Any:
    module_spec, colon, name = spec.rpartition(":")
    if not colon or not module_spec or not name:
        raise SetupError(f"--output {spec}: write MODULE:Type or path/to/file.py:Type")
    module = import_spec(module_spec, "--output")
    value = module
    for part in name.split("."):
        if not hasattr(value, part):
            raise SetupError(f"--output {spec}: {module_spec} has no {name!r}")
        value = getattr(value, part)
    return value
