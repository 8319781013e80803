// @vitest-environment jsdom
import { act, renderHook, waitFor } from '@testing-library/react';
import { expect, inject, it } from 'vitest';
import { SidecarClient } from '../../src/index';
import { useSidecarChat } from '../../src/react/index';

const client = new SidecarClient({ baseUrl: inject('stack').url });

it('useSidecarChat holds a conversation with the real API; stop() cancels the job', async () => {
  const { result } = renderHook(() => useSidecarChat({ client, maxTokens: 200 }));
  await act(() => result.current.send('My dam is at 30%. Should I worry?'));
  await act(() => result.current.send('And what should I do this week?'));
  const messages = result.current.messages;
  expect(messages.map((m) => [m.role, m.status])).toEqual([
    ['user', 'done'],
    ['assistant', 'done'],
    ['user', 'done'],
    ['assistant', 'done'],
  ]);
  expect(messages.every((m) => m.content.length > 0)).toBe(true);
  const second = await client.getJob(messages[3]!.jobId!);
  expect(second.status).toBe('succeeded');
  expect(result.current.error).toBeNull();

  let sending!: Promise<void>;
  act(() => {
    sending = result.current.send('Tell me a very long story about rain');
  });
  await waitFor(() => expect(result.current.messages.at(-1)?.jobId).toBeTruthy());
  const jobId = result.current.messages.at(-1)!.jobId!;
  act(() => result.current.stop());
  await act(() => sending);
  expect(result.current.messages.at(-1)?.status).toBe('stopped');
  await waitFor(async () => expect(['cancelled', 'succeeded']).toContain((await client.getJob(jobId)).status));
});
