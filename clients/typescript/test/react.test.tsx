// @vitest-environment jsdom
import { act, cleanup, fireEvent, render, renderHook, screen, waitFor } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { App, ChatBox } from '../examples/react';
import { SidecarClient, ValidationError } from '../src/index';
import { DroughtAnalyzer, SidecarProvider, useJobStream, useSidecarChat } from '../src/react/index';
import { ANALYSIS, accepted, controlledSse, frame, job, json, mockFetch, sse } from './helpers';

afterEach(cleanup);

const analysisJob = (id: string) =>
  job({ id, type: 'drought_analysis', result: { text: ANALYSIS.summary, analysis: { ...ANALYSIS, key_factors: [...ANALYSIS.key_factors], recommendations: [...ANALYSIS.recommendations] } } });

describe('useSidecarChat', () => {
  it('streams answers and sends the conversation as history', async () => {
    const { fetch, calls } = mockFetch(
      () => accepted('c1'),
      (c) => sse([frame(1, 'token', { text: 'Hel' }), frame(2, 'token', { text: 'lo' }), frame(3, 'done', job({ id: 'c1', result: { text: 'Hello' } }))], 'close', c.signal),
      () => accepted('c2'),
      (c) => sse([frame(1, 'token', { text: 'Yes' }), frame(2, 'done', job({ id: 'c2', result: { text: 'Yes' } }))], 'close', c.signal),
    );
    const client = new SidecarClient({ fetch });
    const { result } = renderHook(() => useSidecarChat({ client, model: 'haiku', system: 'Be brief.' }));
    await act(() => result.current.send('Hi'));
    expect(result.current.messages.map((m) => [m.role, m.content, m.status])).toEqual([
      ['user', 'Hi', 'done'],
      ['assistant', 'Hello', 'done'],
    ]);
    await act(() => result.current.send('Is it dry?'));
    expect(calls[0]?.body).toEqual({ type: 'chat', input: { message: 'Hi', system: 'Be brief.' }, model: 'haiku', priority: 'interactive' });
    expect(calls[2]?.body).toMatchObject({
      input: { message: 'Is it dry?', history: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }] },
    });
    expect(result.current.messages.at(-1)?.content).toBe('Yes');
    expect(result.current.isStreaming).toBe(false);
  });

  it('stop() aborts the stream and cancels the job server-side', async () => {
    const { fetch, calls } = mockFetch(
      () => accepted('c1'),
      (c) => sse([frame(1, 'token', { text: 'Partial' })], 'hang', c.signal),
      () => json(job({ id: 'c1', status: 'cancelled' }), 202),
    );
    render(<ChatBox client={new SidecarClient({ fetch })} />);
    fireEvent.change(screen.getByLabelText('Message'), { target: { value: 'Tell me a long story' } });
    fireEvent.click(screen.getByRole('button', { name: 'Send' }));
    await screen.findByText('Partial');
    expect(screen.getByRole('button', { name: 'Stop' })).toHaveProperty('disabled', false);
    fireEvent.click(screen.getByRole('button', { name: 'Stop' }));
    await waitFor(() => expect(calls[2]).toMatchObject({ method: 'DELETE', url: '/api/jobs/c1' }));
    expect(calls[1]?.signal?.aborted).toBe(true);
    await waitFor(() => expect(screen.getByText('Partial').className).toContain('stopped'));
    expect(screen.getByRole('button', { name: 'Stop' })).toHaveProperty('disabled', true);
  });

  it('shows a failed submission as an error', async () => {
    const { fetch } = mockFetch(() => json({ error: { type: 'rate_limited', message: 'Too many requests' } }, 429, { 'Retry-After': '3' }));
    const { result } = renderHook(() => useSidecarChat({ client: new SidecarClient({ fetch }) }));
    await act(() => result.current.send('Hi'));
    expect(result.current.error?.message).toBe('Too many requests');
    expect(result.current.messages[1]?.status).toBe('error');
  });
});

describe('useJobStream', () => {
  it('follows a job from the provider, dropping text on reset', async () => {
    const { fetch, calls } = mockFetch((c) =>
      sse([frame(1, 'status', { status: 'running' }), frame(2, 'token', { text: 'Wet' }), frame(3, 'reset', { attempt: 2 }), frame(4, 'token', { text: 'Dry' }), frame(5, 'done', job({ id: 'j1', result: { text: 'Dry' } }))], 'close', c.signal),
    );
    const client = new SidecarClient({ fetch, apiKey: 'key' });
    const { result } = renderHook(() => useJobStream('j1'), {
      wrapper: ({ children }) => <SidecarProvider client={client}>{children}</SidecarProvider>,
    });
    await waitFor(() => expect(result.current.status).toBe('succeeded'));
    expect(result.current.text).toBe('Dry');
    expect(result.current.events.map((e) => e.type)).toEqual(['status', 'token', 'reset', 'token', 'done']);
    expect(result.current.job?.result?.text).toBe('Dry');
    expect(calls[0]?.headers.authorization).toBe('Bearer key');
  });
});

describe('getToken through the hooks', () => {
  it('a hook given client options builds one client whose token lasts across renders', async () => {
    const { fetch, calls } = mockFetch(
      () => accepted('c1'),
      (c) => sse([frame(1, 'token', { text: 'Hi' }), frame(2, 'done', job({ id: 'c1', result: { text: 'Hi' } }))], 'close', c.signal),
      () => accepted('c2'),
      (c) => sse([frame(1, 'done', job({ id: 'c2', result: { text: 'Again' } }))], 'close', c.signal),
    );
    const getToken = vi.fn(() => Promise.resolve({ token: 'browser-token', expiresAt: Date.now() + 900_000 }));
    // a new options object on every render, with the same getToken
    const { result, rerender } = renderHook(() => useSidecarChat({ client: { baseUrl: '', fetch, getToken } }));
    await act(() => result.current.send('Hello'));
    rerender();
    await act(() => result.current.send('Again'));
    expect(calls.map((c) => c.headers.authorization)).toEqual(Array(4).fill('Bearer browser-token'));
    expect(getToken).toHaveBeenCalledTimes(1);
  });

  it('SidecarProvider takes options with getToken; a new getToken (another user) builds a new client', async () => {
    const { fetch, calls } = mockFetch(
      (c) => sse([frame(1, 'done', job({ id: 'j1' }))], 'close', c.signal),
      (c) => sse([frame(1, 'done', job({ id: 'j2' }))], 'close', c.signal),
    );
    let getToken = vi.fn(() => 'alice-token');
    let jobId = 'j1';
    const { result, rerender } = renderHook(() => useJobStream(jobId), {
      wrapper: ({ children }) => <SidecarProvider client={{ fetch, getToken }}>{children}</SidecarProvider>,
    });
    await waitFor(() => expect(result.current.status).toBe('succeeded'));
    getToken = vi.fn(() => 'bob-token');
    jobId = 'j2';
    rerender();
    await waitFor(() => expect(result.current.job?.id).toBe('j2'));
    expect(calls.map((c) => [c.url, c.headers.authorization])).toEqual([
      ['/api/jobs/j1/events', 'Bearer alice-token'],
      ['/api/jobs/j2/events', 'Bearer bob-token'],
    ]);
  });

  it('DroughtAnalyzer takes client options too', async () => {
    const { fetch, calls } = mockFetch(
      () => accepted('d1', 'drought_analysis'),
      (c) => sse([frame(1, 'done', analysisJob('d1'))], 'close', c.signal),
    );
    render(<DroughtAnalyzer client={{ fetch, getToken: () => 'analyst-token' }} initialRegion="X" initialIndicators={{ spi_3m: -1 }} />);
    fireEvent.click(screen.getByRole('button', { name: 'Analyse' }));
    await screen.findByTestId('risk-card');
    expect(calls.map((c) => c.headers.authorization)).toEqual(['Bearer analyst-token', 'Bearer analyst-token']);
  });
});

describe('DroughtAnalyzer', () => {
  it('streams the summary, then shows the risk card', async () => {
    let stream!: ReturnType<typeof controlledSse>;
    const { fetch, calls } = mockFetch(
      () => accepted('d1', 'drought_analysis'),
      (c) => (stream = controlledSse(c.signal)).response,
    );
    const onResult = vi.fn();
    render(<DroughtAnalyzer client={new SidecarClient({ fetch })} onResult={onResult} />);
    fireEvent.change(screen.getByLabelText('Region'), { target: { value: 'Canterbury' } });
    fireEvent.change(screen.getByLabelText('SPI, 3 months'), { target: { value: '-1.7' } });
    fireEvent.change(screen.getByLabelText('Audience'), { target: { value: 'council' } });
    fireEvent.click(screen.getByRole('button', { name: 'Analyse' }));
    await waitFor(() => expect(calls).toHaveLength(2));
    expect(calls[0]?.body).toEqual({ type: 'drought_analysis', input: { region: 'Canterbury', indicators: { spi_3m: -1.7 }, audience: 'council' } });
    await act(async () => {
      stream.push(frame(1, 'token', { text: 'Dry soils' }));
      await Promise.resolve();
    });
    expect((await screen.findByTestId('streamed-summary')).textContent).toBe('Dry soils');
    expect(screen.queryByTestId('risk-card')).toBeNull();
    await act(async () => {
      stream.push(frame(2, 'done', analysisJob('d1')));
      await Promise.resolve();
    });
    const card = await screen.findByTestId('risk-card');
    expect(card.dataset.riskLevel).toBe('severe');
    expect(card.textContent).toContain('Confidence 72%');
    expect(card.textContent).toContain('Soil moisture 18%');
    expect(card.textContent).toContain('Destock early');
    expect(onResult).toHaveBeenCalledWith(expect.objectContaining({ risk_level: 'severe' }));
  });

  it('shows a validation error from the API', async () => {
    const body = { error: { type: 'invalid_request', message: 'indicators.soil_moisture_pct: must be <= 100', field: 'indicators.soil_moisture_pct' } };
    const { fetch } = mockFetch(() => json(body, 422));
    render(<DroughtAnalyzer client={new SidecarClient({ fetch })} initialRegion="X" initialIndicators={{ soil_moisture_pct: 50 }} />);
    fireEvent.click(screen.getByRole('button', { name: 'Analyse' }));
    expect((await screen.findByRole('alert')).textContent).toContain('must be <= 100');
    expect(screen.getByLabelText('Soil moisture (% field capacity)').getAttribute('aria-invalid')).toBe('true');
    expect(new ValidationError(422, 't', 'm', 'f')).toBeInstanceOf(Error);
  });

  it('renders the README App with its defaults', async () => {
    const { fetch, calls } = mockFetch(
      () => accepted('d1', 'drought_analysis'),
      (c) => sse([frame(1, 'token', { text: 'Dry' }), frame(2, 'done', analysisJob('d1'))], 'close', c.signal),
    );
    render(<App client={new SidecarClient({ fetch })} />);
    fireEvent.click(screen.getByRole('button', { name: 'Analyse' }));
    await screen.findByTestId('risk-card');
    expect(calls[0]?.body).toMatchObject({ input: { region: 'Canterbury Plains', indicators: { spi_3m: -1.7, reservoir_pct: 41 } } });
    expect(screen.getByLabelText('Conversation')).toBeTruthy();
  });
});
