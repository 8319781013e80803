// The README's Vue example (test/vue.test.ts mounts it): chat and drought analysis as refs.
import type { DroughtInput, SidecarClient } from '@ckcias/sidecar-client';
import { useSidecarAPI } from '@ckcias/sidecar-client/vue';
import { defineComponent, h, ref, type PropType } from 'vue';

export const DroughtPanel = defineComponent({
  props: {
    client: { type: Object as PropType<SidecarClient>, required: true },
    input: { type: Object as PropType<DroughtInput>, required: true },
  },
  setup(props) {
    // Streams stop, and their jobs are cancelled, when the component unmounts.
    const { messages, send, stop, isStreaming, summary, analysis, analyzeDrought } = useSidecarAPI(props.client);
    const draft = ref('');
    return () =>
      h('div', [
        h('button', { onClick: () => void analyzeDrought(props.input) }, 'Analyse'),
        h('p', { class: 'summary' }, summary.value),
        analysis.value &&
          h('section', { class: 'risk' }, [
            h('strong', analysis.value.risk_level),
            ` (${Math.round(analysis.value.confidence * 100)}% confident)`,
            h('ul', analysis.value.recommendations.map((r) => h('li', r.action))),
          ]),
        h('ol', messages.value.map((m) => h('li', { key: m.id, class: m.role }, m.content))),
        h('input', {
          value: draft.value,
          onInput: (e: Event) => (draft.value = (e.target as HTMLInputElement).value),
        }),
        h('button', { class: 'send', disabled: isStreaming.value, onClick: () => void send(draft.value) }, 'Send'),
        h('button', { class: 'stop', disabled: !isStreaming.value, onClick: stop }, 'Stop'),
      ]);
  },
});
