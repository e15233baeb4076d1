"""The typed-output side of a run: how it asks for the answer, and judging what comes back.

`TypedRun` holds the output spec and the request mode of one run, and supplies the
run loop's typed phases: the request fields, the watch over a streaming answer, the
fallback from `response_format` to the final-answer tool, the judging of a whole
response (value, or feedback to the model) and the stop decision.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .._events import Event, OutputInvalid, OutputReady, ToolCallInvalid
from .._exceptions import ModelError, RunError
from ..output._spec import FINAL_TOOL, OutputMode, OutputProblem, OutputSpec
from ..output._watch import OutputWatch
from ..state._state import RunState
from ..wire.responses._request import responses_tools
from ._step_state import StepState

if TYPE_CHECKING:
    from ._config import RunConfig

__all__ = ["FEEDBACK_PREFIX", "TypedRun"]

FEEDBACK_PREFIX = "Invalid output:"
"""How the message that tells the model its typed answer was wrong begins."""

_RECEIVED = "Final answer received."
_AFTER_FINAL = "not run: the final answer was given in the same response"
_ONE_FINAL = "not run: only the first final answer of a response counts"


class TypedRun:
    """What a run with an output type asks for, and the value it has received."""

    __slots__ = ("_config", "answered", "mode", "ready_step", "retry", "setting", "spec", "value")

    def __init__(self, config: RunConfig, spec: OutputSpec, setting: OutputMode) -> None:
        self._config = config
        self.spec = spec
        self.setting = setting
        tool = setting == "tool" or (setting == "auto" and config.output_memory.by_tool)
        self.mode: OutputMode = "tool" if tool else "response_format"
        self.value: Any = None
        self.ready_step: int | None = None
        """The step whose answer was valid."""
        self.retry: str | None = None
        """What the model is told about its last (wrong) answer, still to be added."""
        self.answered: dict[int, str] = {}
        """The tool results of this step's calls settled here, by call index."""

    @property
    def by_tool(self) -> bool:
        """Whether the answer is asked for as the final-answer tool's arguments."""
        return self.mode == "tool"

    def request(
        self, params: dict[str, Any], tools: list[dict[str, Any]], extra_step: bool
    ) -> None:
        """Ask for the typed answer in `params` (`tools`: the agent's tool definitions,
        in the shape of the agent's wire).

        Chat Completions: `response_format`, or the final-answer tool. The Responses
        API: `text.format`, or the same tool in its function shape.
        """
        responses = self._config.api == "responses"
        if not self.by_tool:
            if responses:
                params["text"] = {**(params.get("text") or {}), "format": self.spec.text_format()}
            else:
                params["response_format"] = self.spec.response_format()
            return
        offered = [] if extra_step else list(tools)
        final = self.spec.tool_definition()
        params["tools"] = [*offered, responses_tools([final])[0] if responses else final]
        if not offered:
            params["tool_choice"] = (
                {"type": "function", "name": FINAL_TOOL}
                if responses
                else {"type": "function", "function": {"name": FINAL_TOOL}}
            )
        elif "tool_choice" not in params:
            params["tool_choice"] = "required"  # a tool, or the final answer: never bare text

    def watch(self, step: int) -> OutputWatch:
        """A watch over the answer of one attempt at `step`."""
        return OutputWatch(self.spec, step, tool=self.by_tool)

    def fall_back(self, error: RunError) -> bool:
        """Switch to the tool mode if the server refused `response_format` (mode "auto").

        A 400 whose message names `response_format` (the Responses API: `text.format`
        or `json_schema`): the agent remembers it, so its later runs ask by tool from
        the start.
        """
        if self.setting != "auto" or self.by_tool or not isinstance(error, ModelError):
            return False
        said = f"{error.message} {error.body!r}".lower()
        named = ("text.format", "json_schema") if self._config.api == "responses" else ()
        if error.status_code != 400 or not any(
            word in said for word in ("response_format", *named)
        ):
            return False
        self.mode = "tool"
        self._config.output_memory.by_tool = True
        return True

    def judge_calls(self, step: StepState, state: RunState) -> Iterator[Event]:
        """In the tool mode, the final-answer call of a response: its value, or feedback.

        Runs before the other calls are sorted; the calls it answers are not run. Once
        a valid final answer is in, the other calls of the response are not run either.
        """
        assert step.message is not None
        answered = self.answered = {}
        finals = [call for call in step.message.tool_calls if call.name == FINAL_TOOL]
        if not self.by_tool or not finals:
            return
        first = finals[0]
        try:
            self._take(self.spec.parse(first.arguments), step)
        except OutputProblem as problem:
            state.invalid_calls += 1
            answered[first.index] = f"Invalid tool call: {FINAL_TOOL}: {problem.message}"
            yield OutputInvalid(step.number, first.arguments, problem.message)
            yield ToolCallInvalid(
                step.number, first.index, first.id, FINAL_TOOL, first.arguments, problem.message
            )
        else:
            answered[first.index] = _RECEIVED
            yield OutputReady(step.number, self.value, first.arguments)
        for call in step.message.tool_calls:
            if call.index in answered:
                continue
            if call.name != FINAL_TOOL and self.ready_step != step.number:
                continue  # sorted as usual
            error = _ONE_FINAL if call.name == FINAL_TOOL else _AFTER_FINAL
            answered[call.index] = error
            yield ToolCallInvalid(
                step.number, call.index, call.id, call.name, call.arguments, error
            )

    def judge_answer(self, step: StepState, state: RunState) -> Iterator[Event]:
        """A response without tool calls: the typed answer in its text, or feedback."""
        self.retry = None
        message = step.message
        if message is None:  # a saved step taken up again: it had calls
            return
        if message.tool_calls or message.refusal or step.not_run in ("length", "content_filter"):
            return
        text = message.content or ""
        if self.by_tool:
            error = (
                f"answer by calling the {FINAL_TOOL} tool, whose arguments are the answer; "
                "do not answer in text"
            )
        else:
            try:
                self._take(self.spec.parse(text), step)
            except OutputProblem as problem:
                error = problem.message
            else:
                yield OutputReady(step.number, self.value, text)
                return
        state.invalid_calls += 1
        self.retry = f"{FEEDBACK_PREFIX} {error}. Answer again."
        yield OutputInvalid(step.number, text, error)

    def add_feedback(self, state: RunState) -> None:
        """Add the message telling the model its answer was wrong, after its step."""
        if self.retry is not None:
            state.messages.append({"role": "user", "content": self.retry})

    def goes_on(self, step: StepState) -> bool:
        """Whether the run goes on after `step` although the model asked for no tools."""
        return self.retry is not None and self.ready_step != step.number

    def _take(self, value: Any, step: StepState) -> None:
        self.value = value
        self.ready_step = step.number
        self.retry = None
