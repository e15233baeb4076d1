"""The loop: a run (`_run`) step after step. It receives a `RunConfig` made by `Agent`
(`_config`), sends each attempt on the agent's wire (`_send`, `_step`), keeps the step
under way (`_step_state`), sorts and validates calls (`_calls`, `_validate`), settles
approvals, runs tools (`_execute`, early ones in `_early`; `_cancel` cancels one call and
caps how many run), retries and times out, writes
each step into the state (`_record`), and lets observers watch (`_observe`). `_sync` runs
it from synchronous code. Messages sent to a run (`_steer`), each step's overrides
(`_step_shape`, `_prepare`) and guardrails (`_guardrails`, `_guards`) join the loop
through `_hooks`. Imports every room below it, never the `Agent`.
"""
