"""The Responses API: merging streamed events into output items (`_assemble`, `_items`,
`_merge`, `_output`), the streamed request (`_stream`), the request body and what it
carries from one response to the next (`_request`, `_carry`), and replaying a recorded
stream (`_replay`). Imports `wire/` and the package root's vocabulary only."""
