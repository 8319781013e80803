// The README's React example: a streamed chat and the drought analyser (test/react.test.tsx
// renders these components, and the demo page at /demo is this App).
import type { SidecarClient } from '@ckcias/sidecar-client';
import { DroughtAnalyzer, useSidecarChat } from '@ckcias/sidecar-client/react';
import { useState } from 'react';

export function ChatBox({ client }: { client: SidecarClient }) {
  // Each send() is a `chat` job carrying the conversation so far; stop() also cancels the job.
  const { messages, send, stop, isStreaming, error } = useSidecarChat({ client });
  const [draft, setDraft] = useState('');
  return (
    <section className="chat">
      <h2>Ask about drought</h2>
      <ol aria-label="Conversation">
        {messages.map((m) => (
          <li key={m.id} className={`message ${m.role} ${m.status}`}>
            {m.content || (m.status === 'streaming' ? '…' : '')}
          </li>
        ))}
      </ol>
      {error && <p role="alert">{error.message}</p>}
      <form
        onSubmit={(event) => {
          event.preventDefault();
          void send(draft);
          setDraft('');
        }}
      >
        <input aria-label="Message" value={draft} onChange={(e) => setDraft(e.target.value)} />
        <button type="submit" disabled={isStreaming || !draft.trim()}>
          Send
        </button>
        <button type="button" onClick={stop} disabled={!isStreaming}>
          Stop
        </button>
      </form>
    </section>
  );
}

export function App({ client }: { client: SidecarClient }) {
  return (
    <main>
      <h1>Drought monitor</h1>
      <DroughtAnalyzer
        client={client}
        initialRegion="Canterbury Plains"
        initialIndicators={{ rainfall_mm_30d: 12.5, soil_moisture_pct: 18, spi_3m: -1.7, reservoir_pct: 41 }}
      />
      <ChatBox client={client} />
    </main>
  );
}
