"""agentstream: a small, fast runtime for tool-calling agents built on streamed function calls."""

from __future__ import annotations

from ._agent import Agent as Agent
from ._agent import AgentRun as AgentRun
from ._events import ApprovalRequested as ApprovalRequested
from ._events import ContextCompacted as ContextCompacted
from ._events import Event as Event
from ._events import FallbackUsed as FallbackUsed
from ._events import GuardrailChecked as GuardrailChecked
from ._events import MaxStepsReached as MaxStepsReached
from ._events import MessageDelivered as MessageDelivered
from ._events import MessageQueued as MessageQueued
from ._events import OutputDelta as OutputDelta
from ._events import OutputInvalid as OutputInvalid
from ._events import OutputReady as OutputReady
from ._events import ReasoningDelta as ReasoningDelta
from ._events import RefusalDelta as RefusalDelta
from ._events import RunFailed as RunFailed
from ._events import RunFinished as RunFinished
from ._events import RunStarted as RunStarted
from ._events import ServerError as ServerError
from ._events import StepFinished as StepFinished
from ._events import StepInterrupted as StepInterrupted
from ._events import StepPrepared as StepPrepared
from ._events import StepStarted as StepStarted
from ._events import StreamEvent as StreamEvent
from ._events import SubRunEvent as SubRunEvent
from ._events import TextDelta as TextDelta
from ._events import ToolCallApproved as ToolCallApproved
from ._events import ToolCallDelta as ToolCallDelta
from ._events import ToolCallDenied as ToolCallDenied
from ._events import ToolCallInvalid as ToolCallInvalid
from ._events import ToolCallReady as ToolCallReady
from ._events import ToolCallStarted as ToolCallStarted
from ._events import ToolCancelled as ToolCancelled
from ._events import ToolFinished as ToolFinished
from ._events import ToolPaused as ToolPaused
from ._events import ToolProgress as ToolProgress
from ._events import ToolQueued as ToolQueued
from ._events import ToolStarted as ToolStarted
from ._events import UsageLimitReached as UsageLimitReached
from ._events import event_to_dict as event_to_dict
from ._exceptions import AgentStreamError as AgentStreamError
from ._exceptions import CallNotRunning as CallNotRunning
from ._exceptions import ErrorBudgetExceeded as ErrorBudgetExceeded
from ._exceptions import MediaRefused as MediaRefused
from ._exceptions import ModelError as ModelError
from ._exceptions import RetriesExhausted as RetriesExhausted
from ._exceptions import RunError as RunError
from ._exceptions import RunTimeout as RunTimeout
from ._exceptions import SetupError as SetupError
from ._exceptions import StateError as StateError
from ._exceptions import StreamError as StreamError
from ._exceptions import ToolArgumentsError as ToolArgumentsError
from ._exceptions import ToolCrashed as ToolCrashed
from ._exceptions import ToolDefinitionError as ToolDefinitionError
from ._exceptions import ToolError as ToolError
from ._result import RunResult as RunResult
from ._usage import Usage as Usage
from .context._policy import CharCounter as CharCounter
from .context._policy import ContextPolicy as ContextPolicy
from .context._policy import TokenCounter as TokenCounter
from .loop._fallback import CircuitBreaker as CircuitBreaker
from .loop._fallback import Fallback as Fallback
from .loop._guardrails import InputGuardrail as InputGuardrail
from .loop._guardrails import OutputGuardrail as OutputGuardrail
from .loop._limits import UsageLimits as UsageLimits
from .loop._observe import Observer as Observer
from .loop._observe import RunObserver as RunObserver
from .loop._observe import WatchedRun as WatchedRun
from .loop._prices import Prices as Prices
from .loop._prices import PriceTable as PriceTable
from .loop._retries import Retries as Retries
from .loop._step_shape import StepContext as StepContext
from .loop._step_shape import StepOverrides as StepOverrides
from .loop._sync import SyncRun as SyncRun
from .loop._timeouts import Timeouts as Timeouts
from .output._spec import FINAL_TOOL as FINAL_TOOL
from .output._spec import OutputMode as OutputMode
from .state._approvals import Approval as Approval
from .state._approvals import ApprovalRequest as ApprovalRequest
from .state._guardrail import GuardrailTripped as GuardrailTripped
from .state._state import PendingCall as PendingCall
from .state._state import RunState as RunState
from .state._state import StepInfo as StepInfo
from .state._state import StopReason as StopReason
from .state._store import Session as Session
from .state._store import SessionBusy as SessionBusy
from .state._store import Store as Store
from .state._store import StoreError as StoreError
from .tools._context import ToolContext as ToolContext
from .tools._media import File as File
from .tools._media import Image as Image
from .tools._tool import Tool as Tool
from .tools._tool import tool as tool
from .tools._toolset import Toolset as Toolset
from .wire._message import AssembledChoice as AssembledChoice
from .wire._message import AssembledMessage as AssembledMessage
from .wire._message import AssembledResponse as AssembledResponse
from .wire._message import AssembledToolCall as AssembledToolCall
from .wire.chat._assemble import StreamAssembler as StreamAssembler
from .wire.responses._assemble import ResponsesAssembler as ResponsesAssembler
from .wire.responses._output import AssembledReasoning as AssembledReasoning
from .wire.responses._output import AssembledResponsesOutput as AssembledResponsesOutput
from .wire.responses._output import ResponseFailure as ResponseFailure

__version__ = "0.1.0"

# Plain sorted order (a test checks it), not isort's constants-first.
__all__ = [  # noqa: RUF022
    "Agent",
    "AgentRun",
    "AgentStreamError",
    "Approval",
    "ApprovalRequest",
    "ApprovalRequested",
    "AssembledChoice",
    "AssembledMessage",
    "AssembledReasoning",
    "AssembledResponse",
    "AssembledResponsesOutput",
    "AssembledToolCall",
    "CallNotRunning",
    "CharCounter",
    "CircuitBreaker",
    "ContextCompacted",
    "ContextPolicy",
    "ErrorBudgetExceeded",
    "Event",
    "FINAL_TOOL",
    "Fallback",
    "FallbackUsed",
    "File",
    "GuardrailChecked",
    "GuardrailTripped",
    "Image",
    "InputGuardrail",
    "MaxStepsReached",
    "MediaRefused",
    "MessageDelivered",
    "MessageQueued",
    "ModelError",
    "Observer",
    "OutputDelta",
    "OutputGuardrail",
    "OutputInvalid",
    "OutputMode",
    "OutputReady",
    "PendingCall",
    "PriceTable",
    "Prices",
    "ReasoningDelta",
    "RefusalDelta",
    "ResponseFailure",
    "ResponsesAssembler",
    "Retries",
    "RetriesExhausted",
    "RunError",
    "RunFailed",
    "RunFinished",
    "RunObserver",
    "RunResult",
    "RunStarted",
    "RunState",
    "RunTimeout",
    "ServerError",
    "Session",
    "SessionBusy",
    "SetupError",
    "StateError",
    "StepContext",
    "StepFinished",
    "StepInfo",
    "StepInterrupted",
    "StepOverrides",
    "StepPrepared",
    "StepStarted",
    "StopReason",
    "Store",
    "StoreError",
    "StreamAssembler",
    "StreamError",
    "StreamEvent",
    "SubRunEvent",
    "SyncRun",
    "TextDelta",
    "Timeouts",
    "TokenCounter",
    "Tool",
    "ToolArgumentsError",
    "ToolCallApproved",
    "ToolCallDelta",
    "ToolCallDenied",
    "ToolCallInvalid",
    "ToolCallReady",
    "ToolCallStarted",
    "ToolCancelled",
    "ToolContext",
    "ToolCrashed",
    "ToolDefinitionError",
    "ToolError",
    "ToolFinished",
    "ToolPaused",
    "ToolProgress",
    "ToolQueued",
    "ToolStarted",
    "Toolset",
    "Usage",
    "UsageLimitReached",
    "UsageLimits",
    "WatchedRun",
    "event_to_dict",
    "tool",
]
