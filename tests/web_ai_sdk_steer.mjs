// Reattaches to a chat's steered run with the real `ai` package (DefaultChatTransport's
// resume request and readUIMessageStream), then sends a second turn holding the message
// as the package assembled it; prints both messages as one JSON document.
// Usage: node web_ai_sdk_steer.mjs BASE_URL CHAT_ID, beside the node_modules holding `ai`.
import { DefaultChatTransport, readUIMessageStream } from "ai";

const [base, chatId] = process.argv.slice(2);
const errors = [];
const transport = new DefaultChatTransport({ api: base + "/api/chat" });

async function assemble(stream) {
  let message = null;
  for await (const snapshot of readUIMessageStream({ stream, onError: (e) => errors.push(String(e)) })) {
    message = snapshot;
  }
  return message;
}

const replayed = await assemble(await transport.reconnectToStream({ chatId }));
const first = { id: "u1", role: "user", parts: [{ type: "text", text: "go" }] };
const next = { id: "u2", role: "user", parts: [{ type: "text", text: "Thanks" }] };
const second = await assemble(await transport.sendMessages({
  chatId: chatId + "-2", messages: [first, replayed, next], trigger: "submit-message",
  messageId: undefined, abortSignal: undefined,
}));
console.log(JSON.stringify({ replayed, second, errors }));
