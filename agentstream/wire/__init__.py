"""The two wires: what a server streams, turned into events and whole messages, without I/O.

Owns SSE framing (`_sse`), the assembled message both wires produce (`_message`), the
partial tool call both merge into (`_partial_call`) and the fields a server needs sent
back (`_fields`); `chat/` holds the Chat Completions chunk assembler and its streamed
request, `responses/` the same for the Responses API (plus its request body and the
items carried to the next request). Imports only the shared vocabulary at the package
root (events, exceptions, usage, bounded JSON, redaction): never the tools, the loop or
the agent. The loop picks a wire per agent; a new wire is a new folder here.
"""
