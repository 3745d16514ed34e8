// Real-browser test of the server's API docs.
//
// Opens BASE_URL/docs in Debian's headless Chromium (driven by playwright-core, no browser
// download) with every non-loopback request aborted and recorded, checks that Swagger UI rendered
// the operations, expands `POST /support/chatkit`, runs a `threads.list` request through
// "Try it out", and checks the 200 response. Screenshots go to OUTPUT_DIR/docs.png (whole page) and
// OUTPUT_DIR/docs-chatkit.png (the executed operation).
//
// Environment: BASE_URL (required, e.g. http://127.0.0.1:8000), CHROMIUM_PATH (default
// /usr/bin/chromium), OUTPUT_DIR (default <repo>/test-output). Run through
// scripts/browser-test.sh, which starts a server for it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const BASE_URL = (process.env.BASE_URL ?? '').replace(/\/+$/, '');
const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const OUTPUT_DIR = process.env.OUTPUT_DIR ?? path.resolve(here, '../../test-output');
const CHATKIT_PATH = '/support/chatkit';
const REQUEST_BODY = '{"type":"threads.list","params":{"limit":5}}';

// Flags known to work on this machine kind: without the background-networking ones Chromium
// tries to reach Google's hosts at every start.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Whether a request URL stays on this machine (loopback host, or an in-page data:/blob: URL). */
export function isLoopback(url) {
  let u;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  if (u.protocol === 'data:' || u.protocol === 'blob:' || u.protocol === 'about:') return true;
  const host = u.hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

test('isLoopback tells local from remote URLs', () => {
  assert.equal(isLoopback('http://127.0.0.1:8000/docs'), true);
  assert.equal(isLoopback('http://localhost/x'), true);
  assert.equal(isLoopback('http://[::1]:9/x'), true);
  assert.equal(isLoopback('data:image/png;base64,AA=='), true);
  assert.equal(isLoopback('https://validator.swagger.io/validator?url=x'), false);
  assert.equal(isLoopback('https://cdn.jsdelivr.net/npm/swagger-ui-dist/swagger-ui.css'), false);
  assert.equal(isLoopback('http://127.0.0.1.evil.example/'), false);
  assert.equal(isLoopback('not a url'), false);
});

test('Swagger UI at /docs renders and runs a threads.list request', { timeout: 90_000 }, async (t) => {
  assert.ok(BASE_URL, 'set BASE_URL to the server under test, e.g. http://127.0.0.1:8000');
  assert.ok(isLoopback(BASE_URL), `BASE_URL must be a loopback URL, got ${BASE_URL}`);
  mkdirSync(OUTPUT_DIR, { recursive: true });
  const profile = mkdtempSync(path.join(tmpdir(), 'chromium-docs-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 1600 },
  });
  t.after(async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  });

  const blocked = [];
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (isLoopback(url)) return route.continue();
    blocked.push(url);
    return route.abort('blockedbyclient');
  });
  const pageErrors = [];
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (err) => pageErrors.push(String(err)));

  const screenshot = path.join(OUTPUT_DIR, 'docs.png');
  try {
    const resp = await page.goto(`${BASE_URL}/docs`, { waitUntil: 'domcontentloaded' });
    assert.ok(resp, 'no response for /docs');
    assert.equal(resp.status(), 200, `/docs answered ${resp.status()}`);

    // Swagger UI rendered the operations (not a blank page).
    await page.locator('.opblock').first().waitFor({ state: 'visible', timeout: 30_000 });
    const operations = await page.locator('.opblock').count();
    assert.ok(operations >= 5, `expected at least 5 operations, Swagger UI shows ${operations}`);
    const paths = await page.locator('.opblock-summary-path').allInnerTexts();
    assert.ok(
      paths.some((p) => p.replace(/\u200b/g, '').trim() === CHATKIT_PATH),
      `no ${CHATKIT_PATH} operation among: ${paths.join(', ')}`,
    );

    // Expand POST /support/chatkit and run a threads.list request through "Try it out".
    const op = page
      .locator('.opblock.opblock-post')
      .filter({ has: page.locator(`.opblock-summary-path[data-path="${CHATKIT_PATH}"]`) });
    assert.equal(await op.count(), 1, `expected one POST ${CHATKIT_PATH} operation`);
    // The UI may open it by default (docExpansion); click only when it is closed.
    if (!/\bis-open\b/.test((await op.getAttribute('class')) ?? '')) {
      await op.locator('.opblock-summary').first().click();
    }
    const tryOut = op.locator('button.try-out__btn');
    await tryOut.waitFor({ state: 'visible', timeout: 10_000 });
    const body = op.locator('textarea.body-param__text');
    // React may attach its handlers after the button shows: click until the editor appears.
    for (let attempt = 0; attempt < 5 && !(await body.isVisible()); attempt++) {
      if ((await tryOut.innerText()).trim() === 'Try it out') await tryOut.click();
      await body.waitFor({ state: 'visible', timeout: 2_000 }).catch(() => {});
    }
    await body.waitFor({ state: 'visible', timeout: 5_000 });
    await body.fill(REQUEST_BODY);
    await op.locator('button.execute').click();

    const live = op.locator('.live-responses-table');
    await live.waitFor({ state: 'visible', timeout: 20_000 });
    const status = live.locator('tbody .response-col_status').first();
    await status.waitFor({ state: 'visible', timeout: 20_000 });
    assert.equal((await status.innerText()).trim(), '200', 'threads.list through Try it out did not answer 200');
    const responseBody = await live.locator('.response-col_description pre, .response-col_description code').first().innerText();
    assert.match(responseBody, /"data"/, `response body lacks "data": ${responseBody.slice(0, 300)}`);
    assert.match(responseBody, /"has_more"/, `response body lacks "has_more": ${responseBody.slice(0, 300)}`);
    await op.screenshot({ path: path.join(OUTPUT_DIR, 'docs-chatkit.png') });
  } finally {
    await page.screenshot({ path: screenshot, fullPage: true }).catch(() => {});
  }

  assert.deepEqual(blocked, [], `the page tried to reach non-loopback URLs: ${blocked.join(', ')}`);
  assert.deepEqual(pageErrors, [], `uncaught errors in the page: ${pageErrors.join('; ')}`);
});
