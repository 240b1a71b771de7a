/**
 * The inspector page end to end: a real capture against a real nats-server, the page open in headless
 * Chromium (Debian's `chromium`), and the page itself showing a block go from `open` to `acked`.
 * Writes integration/artifacts/inspector.png.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCapture } from '../machines/create-capture.js';
import { createInspector, type InspectorServer } from '../src/observe/inspector.js';
import { startNatsServer, uniqueName, type NatsServer } from './helpers/nats-server.js';
import { publishAll, type TestMessage } from './helpers/streams.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), 'artifacts');
const WAIT = { timeout: 15_000 };

const skipReason = existsSync(CHROMIUM) ? undefined : `skipped: ${CHROMIUM} not found (apt-get install chromium)`;

/** The little of the DOM the page functions use (the tsconfig has no DOM lib; they run in Chromium). */
interface PageElement {
  textContent: string | null;
  dataset: Record<string, string | undefined>;
  querySelector(selector: string): PageElement | null;
}
declare const document: { querySelectorAll(selector: string): Iterable<PageElement> };

let server: NatsServer;
let nc: NatsConnection;
let browser: BrowserContext | undefined;
const dirs: string[] = [];

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

beforeAll(async () => {
  if (skipReason) return;
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  browser = await chromium.launchPersistentContext(tempDir('jv-chromium-'), {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1100, height: 640 },
  });
});
afterAll(async () => {
  await browser?.close();
  await nc?.close();
  await server?.dispose();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function messages(region: string, n: number, subject: string): TestMessage[] {
  return Array.from({ length: n }, (_, i) => ({
    subject,
    headers: [['X-Region', [region]]],
    data: new TextEncoder().encode(JSON.stringify({ region, i })),
  }));
}

/** Waits until the page shows a block row of this split key in this state with this many messages; returns its session. */
async function blockRow(page: Page, splitKey: string, state: string, count: number): Promise<string> {
  const handle = await page.waitForFunction(
    ({ splitKey, state, count }) => {
      const rows = [...document.querySelectorAll('#actors tbody tr[data-kind="block"]')];
      const row = rows.find(
        (r) => r.querySelector('.split-key')?.textContent === splitKey && r.dataset.state === state && r.querySelector('.messages')?.textContent === String(count),
      );
      return row?.dataset.session ?? false;
    },
    { splitKey, state, count },
    WAIT,
  );
  return (await handle.jsonValue()) as string;
}

describe.skipIf(skipReason !== undefined)(skipReason ?? 'inspector page in headless Chromium', () => {
  it('shows a live block go from open to acked while a real capture runs', async () => {
    const stream = uniqueName('ORDERS');
    const subject = `${stream.toLowerCase()}.orders`;
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: stream, subjects: [`${stream.toLowerCase()}.>`] });

    const inspector = createInspector();
    const capture = createCapture({
      servers: server.url,
      stream,
      store: tempDir('jv-inspect-store-'),
      splitBy: 'header:X-Region',
      idleMs: 1_500,
      maxMessages: 1_000_000,
      inspect: inspector.inspect,
    });
    const bound = new Promise<void>((resolve) => capture.on('consumer.bound', () => resolve()));
    let web: InspectorServer | undefined;
    let drained = false;
    const page = await browser!.newPage();
    try {
      web = await inspector.listen(0);
      const problems: string[] = [];
      const origin = new URL(web.url).origin;
      page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
      page.on('console', (m) => void (m.type() === 'error' && problems.push(`console: ${m.text()}`)));
      page.on('request', (r) => void (new URL(r.url()).origin !== origin && problems.push(`external request: ${r.url()}`)));

      await page.goto(web.url);
      await page.waitForSelector('#link[data-status="live"]', WAIT);
      await bound;
      await page.waitForSelector('tr[data-kind="connection"][data-state="open.connected"]', WAIT);
      await page.waitForSelector('tr[data-kind="subscription"][data-state="active.consuming"]', WAIT);
      await page.waitForSelector('tr[data-kind="supervisor"][data-state="capturing.running.continuous"]', WAIT);

      // A split key is message data: the page must show it as text, never as markup.
      const hostile = '<b class="injected">ap</b>';
      await publishAll(nc, stream, [...messages('eu', 5, subject), ...messages(hostile, 2, subject)]);

      const eu = await blockRow(page, 'eu', 'open', 5);
      await blockRow(page, hostile, 'open', 2);
      expect(await page.locator('#actors .injected').count()).toBe(0);

      // Idle for 1.5 s: sealed, stored, acked; the finished row stays on the page with its key.
      await page.waitForSelector(`tr[data-session="${eu}"][data-state="acked"].finished`, WAIT);
      const row = page.locator(`tr[data-session="${eu}"]`);
      expect(await row.locator('.messages').textContent()).toBe('5');
      expect(await row.locator('.block-key').textContent()).toMatch(new RegExp(`^${stream}/eu/.+-000000000001-000000000005`));
      const path = await page.locator('#transitions li').evaluateAll((items, id) =>
        items.filter((li) => li.querySelector('.actor')?.textContent === id).map((li) => (li as unknown as PageElement).dataset.to).reverse(), await row.locator('.id').textContent());
      expect(path).toEqual(['open', 'sealing', 'persisting.storing', 'acking', 'acked']);

      // A new block opens after the first was acked: both states on one page for the screenshot.
      await publishAll(nc, stream, messages('us', 3, subject));
      await blockRow(page, 'us', 'open', 3);
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, 'inspector.png'), fullPage: true });

      const report = await capture.drain();
      drained = true;
      expect(report.messages).toBe(10);
      await page.waitForSelector('tr[data-kind="supervisor"][data-state="stopped"]', WAIT);
      await blockRow(page, 'us', 'acked', 3);
      expect(problems).toEqual([]);
    } finally {
      if (!drained) await capture.stop();
      await page.close();
      await web?.close();
    }
  });
});
