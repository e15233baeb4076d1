"""The attribute names the spans carry.

From the OpenTelemetry semantic conventions for generative AI (1.37), plus a few of
agentstream's own under `agentstream.` where the conventions have no name yet.
"""

from __future__ import annotations

SCHEMA_URL = "https://opentelemetry.io/schemas/1.37.0"

# Operation names, which also begin the span names.
CHAT = "chat"
EXECUTE_TOOL = "execute_tool"
INVOKE_AGENT = "invoke_agent"

OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
SYSTEM = "gen_ai.system"
"""The provider's name under the conventions' older key, for backends that read only it."""
AGENT_NAME = "gen_ai.agent.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_ID = "gen_ai.response.id"
FINISH_REASONS = "gen_ai.response.finish_reasons"
TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
CACHED_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
REASONING_TOKENS = "gen_ai.usage.reasoning.output_tokens"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_TYPE = "gen_ai.tool.type"
TOOL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_RESULT = "gen_ai.tool.call.result"
ERROR_TYPE = "error.type"

# agentstream's own.
RUN_ID = "agentstream.run_id"
STEP = "agentstream.step"
ATTEMPT = "agentstream.attempt"
"""Which attempt at its step a request is (1, then 2 after a retry, ...)."""
ATTEMPTS = "agentstream.attempts"
"""On a step span: how many requests the step took."""
TOKENS_PER_SECOND = "agentstream.tokens_per_second"
"""Output tokens per second after the first token, when the server reported usage."""
STOP_REASON = "agentstream.stop_reason"
STEPS = "agentstream.steps"
TRUNCATED = "agentstream.tool.result_truncated"
# Spending and fallback models (agentstream's own: the conventions have no names yet).
COST = "agentstream.cost_usd"
"""The cost of a response (on the request span) or of the run (on the run's span), in USD."""
FALLBACK = "agentstream.fallback"
"""On a request span: True when a fallback model answered in place of the agent's."""
USAGE_LIMIT = "agentstream.usage_limit"
"""On the run's span: the usage limit that stopped the run."""
