// @vitest-environment jsdom
import { flushPromises, mount } from '@vue/test-utils';
import { describe, expect, it, vi } from 'vitest';
import { effectScope, nextTick } from 'vue';
import { DroughtPanel } from '../examples/vue';
import { SidecarClient } from '../src/index';
import { useSidecarAPI } from '../src/vue/index';
import { ANALYSIS, accepted, controlledSse, frame, job, json, mockFetch, sse } from './helpers';

const input = { region: 'Canterbury', indicators: { spi_3m: -1.7 } };
const analysisJob = job({
  id: 'd1',
  type: 'drought_analysis',
  result: { text: ANALYSIS.summary, analysis: { ...ANALYSIS, key_factors: [...ANALYSIS.key_factors], recommendations: [...ANALYSIS.recommendations] } },
});

describe('useSidecarAPI', () => {
  it('the README component streams a drought summary, then shows the analysis', async () => {
    let stream!: ReturnType<typeof controlledSse>;
    const { fetch, calls } = mockFetch(
      () => accepted('d1', 'drought_analysis'),
      (c) => (stream = controlledSse(c.signal)).response,
    );
    const wrapper = mount(DroughtPanel, { props: { client: new SidecarClient({ fetch }), input } });
    await wrapper.get('button').trigger('click');
    await flushPromises();
    expect(calls[0]?.body).toEqual({ type: 'drought_analysis', input });
    stream.push(frame(1, 'token', { text: 'Dry soils' }));
    await flushPromises();
    expect(wrapper.get('.summary').text()).toBe('Dry soils');
    expect(wrapper.find('.risk').exists()).toBe(false);
    stream.push(frame(2, 'done', analysisJob));
    stream.close();
    await flushPromises();
    expect(wrapper.get('.risk').text()).toContain('severe (72% confident)');
    expect(wrapper.get('.risk').text()).toContain('Destock early');
    wrapper.unmount();
  });

  it('chats with history, and stop() cancels the job', async () => {
    const { fetch, calls } = mockFetch(
      () => accepted('c1'),
      (c) => sse([frame(1, 'token', { text: 'Kia ora' }), frame(2, 'done', job({ id: 'c1', result: { text: 'Kia ora' } }))], 'close', c.signal),
      () => accepted('c2'),
      (c) => sse([frame(1, 'token', { text: 'Partial' })], 'hang', c.signal),
      () => json(job({ id: 'c2', status: 'cancelled' }), 202),
    );
    const wrapper = mount(DroughtPanel, { props: { client: new SidecarClient({ fetch }), input } });
    await wrapper.get('input').setValue('Hello');
    await wrapper.get('button.send').trigger('click');
    await flushPromises();
    expect(wrapper.findAll('li.assistant').map((li) => li.text())).toEqual(['Kia ora']);
    await wrapper.get('input').setValue('Tell me more');
    await wrapper.get('button.send').trigger('click');
    await flushPromises();
    expect(calls[2]?.body).toMatchObject({ input: { message: 'Tell me more', history: [{ role: 'user', content: 'Hello' }, { role: 'assistant', content: 'Kia ora' }] } });
    expect(wrapper.get('button.stop').attributes('disabled')).toBeUndefined();
    await wrapper.get('button.stop').trigger('click');
    await flushPromises();
    expect(calls[4]).toMatchObject({ method: 'DELETE', url: '/api/jobs/c2' });
    expect(calls[3]?.signal?.aborted).toBe(true);
    expect(wrapper.get('button.stop').attributes('disabled')).toBeDefined();
  });

  it('follows a job as refs and stops streams when its scope ends', async () => {
    const { fetch, calls } = mockFetch(
      (c) => sse([frame(1, 'token', { text: 'Wet' }), frame(2, 'reset', { attempt: 2 }), frame(3, 'token', { text: 'Dry' })], 'hang', c.signal),
      () => accepted('c9'),
      (c) => sse([frame(1, 'token', { text: 'x' })], 'hang', c.signal),
      () => json(job({ id: 'c9', status: 'cancelled' }), 202),
    );
    const scope = effectScope();
    const api = scope.run(() => useSidecarAPI(new SidecarClient({ fetch })))!;
    void api.followJob('j1');
    await flushPromises();
    expect(api.jobText.value).toBe('Dry');
    expect(api.jobEvents.value.map((e) => e.type)).toEqual(['token', 'reset', 'token']);
    void api.send('hi');
    await flushPromises();
    expect(api.isStreaming.value).toBe(true);
    scope.stop();
    await nextTick();
    await flushPromises();
    expect(calls[0]?.signal?.aborted).toBe(true);
    expect(calls[2]?.signal?.aborted).toBe(true);
    expect(calls[3]).toMatchObject({ method: 'DELETE', url: '/api/jobs/c9' });
  });

  it('takes client options: a getToken given to the composable reaches every request', async () => {
    const { fetch, calls } = mockFetch(
      () => accepted('c1'),
      (c) => sse([frame(1, 'token', { text: 'Kia ora' }), frame(2, 'done', job({ id: 'c1', result: { text: 'Kia ora' } }))], 'close', c.signal),
      (c) => sse([frame(1, 'done', job({ id: 'j7' }))], 'close', c.signal),
    );
    const getToken = vi.fn(() => Promise.resolve('vue-token'));
    const scope = effectScope();
    const api = scope.run(() => useSidecarAPI({ baseUrl: 'http://sidecar.test', fetch, getToken }))!;
    expect(api.client).toBeInstanceOf(SidecarClient);
    await api.send('hello');
    await api.followJob('j7');
    expect(api.job.value?.id).toBe('j7');
    expect(calls.map((c) => [c.url, c.headers.authorization])).toEqual([
      ['http://sidecar.test/api/jobs', 'Bearer vue-token'],
      ['http://sidecar.test/api/jobs/c1/events', 'Bearer vue-token'],
      ['http://sidecar.test/api/jobs/j7/events', 'Bearer vue-token'],
    ]);
    expect(getToken).toHaveBeenCalledTimes(1);
    scope.stop();
  });
});
