// Reads agentstream.web's /api/chat with the real `ai` package (its DefaultChatTransport,
// what useChat uses, and readUIMessageStream), then reattaches with the transport's
// resume request; prints what the package assembled as one JSON document.
// Usage: node web_ai_sdk.mjs BASE_URL PROMPT, from a copy beside the node_modules holding `ai`.
import { createRequire } from "node:module";
import { DefaultChatTransport, readUIMessageStream } from "ai";

const [base, prompt] = process.argv.slice(2);
const version = createRequire(import.meta.url)("ai/package.json").version;
const errors = [];
const transport = new DefaultChatTransport({ api: base + "/api/chat" });

async function assemble(stream) {
  const [forMessages, forTypes] = stream.tee();
  const types = [];
  const counting = (async () => {
    for await (const chunk of forTypes) types.push(chunk.type === "finish" ? "finish:" + chunk.finishReason : chunk.type);
  })();
  let message = null;
  for await (const snapshot of readUIMessageStream({ stream: forMessages, onError: (e) => errors.push(String(e)) })) {
    message = snapshot;
  }
  await counting;
  return { message, types };
}

const messages = [{ id: "u1", role: "user", parts: [{ type: "text", text: prompt }] }];
const sent = await transport.sendMessages({
  chatId: "node-chat", messages, trigger: "submit-message", messageId: undefined, abortSignal: undefined,
});
const first = await assemble(sent);
const again = await transport.reconnectToStream({ chatId: "node-chat" });
const resumed = again === null ? null : await assemble(again);
const missing = await transport.reconnectToStream({ chatId: "no-such-chat" });
// A second turn sends the conversation as useChat keeps it, the first answer included.
const followUp = { id: "u2", role: "user", parts: [{ type: "text", text: "And the weather in Oslo?" }] };
const next = await transport.sendMessages({
  chatId: "node-chat-2", messages: [...messages, first.message, followUp], trigger: "submit-message",
  messageId: undefined, abortSignal: undefined,
});
const second = await assemble(next);
console.log(JSON.stringify({ version, first, resumed, missingIsNull: missing === null, second, errors }));
