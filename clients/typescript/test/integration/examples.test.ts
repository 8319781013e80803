import { expect, inject, it } from 'vitest';
import { tour } from '../../examples/node';
import { SidecarClient } from '../../src/index';

it('the README tour runs against the real stack', async () => {
  const log = await tour(new SidecarClient({ baseUrl: inject('stack').url }));
  expect(log.some((line) => line.startsWith('token: '))).toBe(true);
  expect(log).toContain('invalid indicators.soil_moisture_pct');
  expect(log.some((line) => line.startsWith('succeeded, $'))).toBe(true);
});
