"""Context policies: keeping each request of a run within a token budget.

`_policy` holds what a user sets (`ContextPolicy`, the `TokenCounter` seam and its
default `CharCounter`); `_compact` turns a conversation into the view a request is
built from (tool results shortened or dropped, the oldest turns marked for a summary),
without I/O; `_summary` writes the summary request's messages and knows a server's
"context length exceeded". The loop (`loop/_context`) sends the summary request and
keeps the run's full conversation untouched. Imports the state room only.
"""
