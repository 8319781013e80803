// Browser check of the demo page the API serves at /demo:
//   node e2e/demo.mjs --url http://127.0.0.1:8000 --screenshot ../../test-artifacts/demo.png
// Headless Chromium (Debian's /usr/bin/chromium, or CHROMIUM) opens {url}/demo, runs a drought
// analysis and a chat turn, checks that streamed text appeared before the risk card, that the
// page showed its browser token (subject and expiry) and sent it with every API request, and
// that the console stayed free of errors, saves a screenshot, and prints a JSON summary.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    screenshot: { type: 'string', default: 'test-artifacts/demo.png' },
    timeout: { type: 'string', default: '30000' },
  },
});
if (!values.url) throw new Error('--url is required (the API, e.g. http://127.0.0.1:8000)');
const timeout = Number(values.timeout);
const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

const profile = mkdtempSync(join(tmpdir(), 'sidecar-demo-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: FLAGS,
  viewport: { width: 1100, height: 1400 },
});
const errors = [];
const requests = [];
const apiCalls = [];
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(timeout);
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => errors.push(`page: ${error.message}`));
  page.on('requestfailed', (request) => {
    // a stream the page itself aborted is not an error
    if (request.failure()?.errorText !== 'net::ERR_ABORTED') errors.push(`request: ${request.url()} ${request.failure()?.errorText}`);
  });
  page.on('request', (request) => {
    const url = new URL(request.url());
    requests.push(url.origin);
    if (url.pathname.startsWith('/api/')) {
      // allHeaders(): headers() may leave security-related ones out
      const bearer = request.allHeaders().then((headers) => /^Bearer \S+/.test(headers.authorization ?? ''), () => false);
      apiCalls.push(bearer.then((sent) => ({ path: url.pathname, bearer: sent })));
    }
  });

  await page.goto(`${values.url}/demo`, { waitUntil: 'load' });
  await page.getByRole('heading', { name: 'Drought monitor' }).waitFor();

  // Record, in the page, when streamed text first shows and when the risk card appears.
  await page.evaluate(() => {
    const timeline = (window.__timeline = {});
    const observer = new MutationObserver(() => {
      const streamed = document.querySelector('[data-testid="streamed-summary"]');
      if (!timeline.streamed && streamed && !streamed.textContent.startsWith('Waiting')) {
        timeline.streamed = performance.now();
        timeline.streamedText = streamed.textContent;
      }
      if (!timeline.card && document.querySelector('[data-testid="risk-card"]')) timeline.card = performance.now();
    });
    observer.observe(document.body, { subtree: true, childList: true, characterData: true });
  });
  await page.getByLabel('Region').fill('Canterbury Plains');
  await page.getByRole('button', { name: 'Analyse' }).click();
  const card = page.getByTestId('risk-card');
  await card.waitFor();
  const timeline = await page.evaluate(() => window.__timeline);
  const riskLevel = await card.getAttribute('data-risk-level');
  const cardText = await card.innerText();

  await page.getByLabel('Message').fill('How do I protect pasture in a dry spell?');
  await page.getByRole('button', { name: 'Send' }).click();
  const reply = page.locator('li.message.assistant.done');
  await reply.waitFor();
  const chatReply = await reply.innerText();
  const tokenSubject = await page.getByTestId('token-subject').innerText();
  const tokenExpiresAt = await page.getByTestId('token-expiry').locator('time').getAttribute('datetime');

  mkdirSync(dirname(resolve(values.screenshot)), { recursive: true });
  await page.screenshot({ path: values.screenshot, fullPage: true });

  const ownOrigin = new URL(values.url).origin;
  const result = {
    riskLevel,
    streamedBeforeCard: Boolean(timeline.streamed && timeline.card && timeline.streamed < timeline.card),
    streamedText: timeline.streamedText ?? null,
    cardHasConfidence: /Confidence \d+%/.test(cardText),
    chatReply: chatReply.slice(0, 80),
    tokenSubject,
    tokenExpiresAt,
    // every API call but the token's own carried it
    unauthenticatedCalls: (await Promise.all(apiCalls)).filter((call) => call.path !== '/api/tokens' && !call.bearer).map((call) => call.path),
    otherOrigins: [...new Set(requests)].filter((origin) => origin !== ownOrigin),
    consoleErrors: errors,
    screenshot: values.screenshot,
  };
  console.log(JSON.stringify(result));
  const tokenShown = tokenSubject === 'demo-user' && Date.parse(tokenExpiresAt ?? '') > Date.now();
  const ok = result.streamedBeforeCard && result.cardHasConfidence && riskLevel && chatReply && tokenShown
    && !result.unauthenticatedCalls.length && !errors.length && !result.otherOrigins.length;
  process.exitCode = ok ? 0 : 1;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
