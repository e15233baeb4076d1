"""Chat Completions: merging streamed chunks into a message (`_assemble`, `_parts`) and the
streamed request that reads them off the socket (`_stream`). Imports `wire/` and the
package root's vocabulary only."""
