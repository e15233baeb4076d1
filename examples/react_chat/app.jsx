// A chat on agentstream's /api/chat with the AI SDK's useChat: text, tool cards, and
// Approve / Deny for the calls that wait for a person. Build: see README.md.
import React, { useState } from "react";
import { createRoot } from "react-dom/client";
import { useChat } from "@ai-sdk/react";
import {
  DefaultChatTransport,
  getToolName,
  isToolUIPart,
  lastAssistantMessageIsCompleteWithApprovalResponses,
} from "ai";

function ToolCard({ part, onDecide }) {
  const name = getToolName(part);
  return (
    <div className={"tool " + part.state} data-tool={name}>
      <span className="name">{name}</span> <span className="state">{part.state}</span>
      <pre className="input">{JSON.stringify(part.input ?? null)}</pre>
      {part.state === "output-available" && <pre className="output">{String(part.output)}</pre>}
      {part.state === "output-error" && <pre className="output error">{part.errorText}</pre>}
      {part.state === "approval-requested" && (
        <div className="approval">
          <button className="approve" onClick={() => onDecide(part.approval.id, true)}>Approve</button>
          <button className="deny" onClick={() => onDecide(part.approval.id, false)}>Deny</button>
        </div>
      )}
    </div>
  );
}

function Message({ message, onDecide }) {
  return (
    <div className={"message " + message.role}>
      <div className="role">{message.role}</div>
      {message.parts.map((part, n) => {
        if (part.type === "text") return <p className="text" key={n}>{part.text}</p>;
        if (isToolUIPart(part)) return <ToolCard key={n} part={part} onDecide={onDecide} />;
        return null; // reasoning, steps, data parts: not shown here
      })}
    </div>
  );
}

function App() {
  const [input, setInput] = useState("");
  const { messages, sendMessage, status, stop, addToolApprovalResponse } = useChat({
    transport: new DefaultChatTransport({ api: "/api/chat" }),
    // Once every call awaiting approval has a decision, send them to resume the run.
    sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithApprovalResponses,
  });
  const decide = (id, approved) => addToolApprovalResponse({ id, approved });
  const submit = (event) => {
    event.preventDefault();
    if (!input.trim()) return;
    sendMessage({ text: input });
    setInput("");
  };
  return (
    <main>
      <div id="messages">
        {messages.map((m) => <Message key={m.id} message={m} onDecide={decide} />)}
      </div>
      <form onSubmit={submit}>
        <input id="prompt" value={input} onChange={(e) => setInput(e.target.value)}
          placeholder="Ask for the weather, or to book a hotel" />
        <button id="send" type="submit" disabled={status !== "ready"}>Send</button>
        <button id="stop" type="button" onClick={stop} disabled={status === "ready"}>Stop</button>
      </form>
      <div id="status">{status}</div>
    </main>
  );
}

createRoot(document.getElementById("root")).render(<App />);
