// The README's plain TypeScript example (test/integration/examples.test.ts runs it against the
// real stack). Works in browsers and Node >= 18 alike.
import { ValidationError, type SidecarClient } from '@ckcias/sidecar-client';

export async function tour(client: SidecarClient): Promise<string[]> {
  const log: string[] = [];

  // Ask and wait.
  const answer = await client.chat({ message: 'What does an SPI of -1.5 mean for my farm?' });
  log.push(answer.response);

  // The same, streamed: an async iterable of text chunks.
  let streamed = '';
  for await (const chunk of client.chatStream({ message: 'Explain drought management' })) streamed += chunk;
  log.push(streamed);

  // A drought analysis: the summary streams through onToken, then the validated analysis.
  const { analysis } = await client.analyzeDrought(
    { region: 'Canterbury Plains', indicators: { spi_3m: -1.7, soil_moisture_pct: 18 }, audience: 'farmer' },
    { onToken: (text) => log.push(`token: ${text}`) },
  );
  log.push(`${analysis.risk_level} (${analysis.confidence})`);

  // Any job, followed event by event (reconnecting with Last-Event-ID by itself).
  const job = await client.submitJob({ type: 'chat', input: { message: 'And for my dam?' } });
  for await (const event of client.streamJob(job.id)) {
    if (event.type === 'reset') log.push('[retrying: drop the partial text]');
    if (event.type === 'done') log.push(`${event.data.status}, $${event.data.cost_usd}`);
  }

  // Errors are typed.
  try {
    await client.analyzeDrought({ region: 'Nowhere', indicators: { soil_moisture_pct: 140 } });
  } catch (error) {
    if (error instanceof ValidationError) log.push(`invalid ${error.field}`);
  }
  return log;
}
