// Drives the real `ai` package's chat (AbstractChat, what useChat wraps) through a tool
// approval against agentstream.web: send a prompt, answer the approval request with
// addToolApprovalResponse, and let sendAutomaticallyWhen (the package's
// lastAssistantMessageIsCompleteWithApprovalResponses) send the decision. Prints the
// chat's messages and the request bodies the package sent, as one JSON document.
// Usage: node web_ai_sdk_approval.mjs FIRST_URL THEN_URL CHAT_ID PROMPT approve|deny [REASON]
// (the decision goes to THEN_URL: another app on the same store stands for a restart).
import {
  AbstractChat, DefaultChatTransport, lastAssistantMessageIsCompleteWithApprovalResponses,
} from "ai";

const [first, then, chatId, prompt, decision, reason] = process.argv.slice(2);
const bodies = [];
const errors = [];

class State {
  constructor() { this.status = "ready"; this.error = undefined; this.messages = []; }
  pushMessage(message) { this.messages = [...this.messages, message]; }
  popMessage() { this.messages = this.messages.slice(0, -1); }
  replaceMessage(index, message) {
    this.messages = this.messages.map((old, i) => (i === index ? message : old));
  }
  snapshot(thing) { return structuredClone(thing); }
}

// The first request goes to FIRST_URL, the later ones to THEN_URL.
const fetchTo = async (url, init) => {
  bodies.push(JSON.parse(init.body));
  const target = bodies.length === 1 ? url : String(url).replace(first, then);
  return fetch(target, init);
};

const state = new State();
const chat = new (class extends AbstractChat {})({
  id: chatId,
  state,
  transport: new DefaultChatTransport({ api: first + "/api/chat", fetch: fetchTo }),
  sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithApprovalResponses,
  onError: (error) => errors.push(String(error)),
});

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
async function settled(requests) {
  for (let i = 0; i < 1500 && !(bodies.length >= requests && chat.status === "ready"); i++) {
    if (chat.status === "error") break;
    await sleep(20);
  }
}

await chat.sendMessage({ text: prompt });
await settled(1);
const paused = structuredClone(state.messages);
const waiting = paused.at(-1).parts.filter((part) => part.state === "approval-requested");
for (const part of waiting) {
  await chat.addToolApprovalResponse({
    id: part.approval.id, approved: decision === "approve", reason: reason || undefined,
  });
}
await settled(2);
console.log(JSON.stringify({ paused, messages: state.messages, bodies, status: chat.status, errors }));
