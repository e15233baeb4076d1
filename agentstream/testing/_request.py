"""What a scripted model receives: `ModelRequest`, and the `Policy` that answers it."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from ._reply import Reply
from ._responses_request import chat_messages, chat_tools

__all__ = ["ModelRequest", "Policy"]


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """One HTTP request the scripted model received."""

    method: str
    """`"POST"`, `"GET"`, ..."""
    path: str
    """The URL path, e.g. `"/v1/chat/completions"`."""
    headers: Mapping[str, str]
    """Request headers, names in lower case."""
    body: Any
    """The parsed JSON body, or None when the body is empty or not JSON."""
    content: bytes = b""
    """The raw body."""
    query: str = ""
    """The query string, without the `?` (e.g. `"api-version=2024-10-21"`)."""

    @classmethod
    def from_http(
        cls, method: str, path: str, headers: Mapping[str, str], content: bytes, query: str = ""
    ) -> ModelRequest:
        """Build a request from its HTTP parts, parsing a JSON body."""
        body: Any = None
        if content:
            try:
                body = json.loads(content)
            except (ValueError, RecursionError):  # not JSON, or nested too deep to read
                body = None
        return cls(method.upper(), path, headers, body, content, query)

    def _get(self, key: str) -> Any:
        return self.body.get(key) if isinstance(self.body, dict) else None

    @property
    def api(self) -> str:
        """`"responses"` for a Responses API request (`POST .../responses`), else `"chat"`."""
        return "responses" if self.path.rstrip("/").endswith("/responses") else "chat"

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The request's `messages` (empty if none).

        On the Responses API, `instructions` and the `input` items read as chat
        messages: function calls as an assistant's `tool_calls`, their outputs as
        `tool` messages by `call_id`.
        """
        if self.api == "responses":
            return chat_messages(self.body) if isinstance(self.body, dict) else []
        messages = self._get("messages")
        return messages if isinstance(messages, list) else []

    @property
    def tools(self) -> list[dict[str, Any]]:
        """The request's `tools` (empty if none), in the chat format on either API."""
        tools = self._get("tools")
        if not isinstance(tools, list):
            return []
        return chat_tools(tools) if self.api == "responses" else tools

    @property
    def model(self) -> str | None:
        """The requested model name."""
        model = self._get("model")
        return model if isinstance(model, str) else None

    @property
    def stream(self) -> bool:
        """Whether the client asked for a streamed answer."""
        return self._get("stream") is True

    @property
    def include_usage(self) -> bool:
        """Whether the client asked for a usage chunk (`stream_options.include_usage`);
        always on the Responses API, whose last event carries the usage."""
        if self.api == "responses":
            return True
        options = self._get("stream_options")
        return isinstance(options, dict) and options.get("include_usage") is True


Policy: TypeAlias = Callable[[ModelRequest], Reply]
"""Chooses the reply to a chat completion request; a `ScriptedModel` can be built on one."""
