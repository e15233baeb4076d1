"""What a run saves: `RunState` (its conversation, counters, the step waiting for calls),
`StepInfo` and `StopReason`, approvals as data, the checks a saved state must pass, and
sessions over the `Store` protocol. The lowest room: plain data that every other room
may read, importing only exceptions and usage.
"""
