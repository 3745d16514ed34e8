// Real-browser test of the server's API docs.
//
// Opens BASE_URL/docs in Debian's headless Chromium (driven by playwright-core, no browser
// download) with every non-loopback request aborted and recorded, checks that Swagger UI rendered
// the operations, expands `POST /support/chatkit`, runs a `threads.list` request through
// "Try it out", and checks the 200 response. Then, on AUTH_BASE_URL (a server in AUTH_MODE=jwt), the
// same request answers 401 until the token AUTH_TOKEN is entered through Swagger UI's "Authorize"
// button, and 200 with it (sent as `Authorization: Bearer`). Screenshots go to OUTPUT_DIR/docs.png
// (whole page), OUTPUT_DIR/docs-chatkit.png (the executed operation) and OUTPUT_DIR/docs-authorized.png.
//
// Environment: BASE_URL (required, e.g. http://127.0.0.1:8000), AUTH_BASE_URL and AUTH_TOKEN (the
// authorized check is skipped without them), CHROMIUM_PATH (default /usr/bin/chromium), OUTPUT_DIR
// (default <repo>/test-output). Run through scripts/browser-test.sh, which starts both servers for it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const BASE_URL = (process.env.BASE_URL ?? '').replace(/\/+$/, '');
const AUTH_BASE_URL = (process.env.AUTH_BASE_URL ?? '').replace(/\/+$/, '');
const AUTH_TOKEN = process.env.AUTH_TOKEN ?? '';
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

/** Opens a headless Chromium that aborts (and records) every non-loopback request. */
async function launch(t) {
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
  return { page, blocked, pageErrors };
}

/** Loads `base`/docs and waits until Swagger UI shows its operations. */
async function openDocs(page, base) {
  const resp = await page.goto(`${base}/docs`, { waitUntil: 'domcontentloaded' });
  assert.ok(resp, 'no response for /docs');
  assert.equal(resp.status(), 200, `/docs answered ${resp.status()}`);
  await page.locator('.opblock').first().waitFor({ state: 'visible', timeout: 30_000 });
}

/** Expands POST /support/chatkit, turns on "Try it out" and fills in a threads.list request. */
async function prepareThreadsList(page) {
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
  return op;
}

/**
 * Clicks "Execute" and waits for the answer and for Swagger UI to show it: its status as the page
 * shows it, the response body text, and the Authorization header the browser sent (or undefined).
 */
async function execute(page, op) {
  const isCall = (r) => new URL(r.url()).pathname === CHATKIT_PATH && r.request().method() === 'POST';
  const [response] = await Promise.all([
    page.waitForResponse(isCall, { timeout: 20_000 }),
    op.locator('button.execute').click(),
  ]);
  const authorization = (await response.request().allHeaders())['authorization'];
  const live = op.locator('.live-responses-table');
  await live.waitFor({ state: 'visible', timeout: 20_000 });
  const status = live.locator('tbody .response-col_status').first();
  const expected = String(response.status());
  for (let i = 0; i < 100 && (await status.innerText().catch(() => '')).trim() !== expected; i++) {
    await page.waitForTimeout(100);
  }
  const shown = (await status.innerText()).trim();
  const body = await live.locator('.response-col_description pre, .response-col_description code').first().innerText();
  return { shown, body, authorization };
}

test('Swagger UI at /docs renders and runs a threads.list request', { timeout: 90_000 }, async (t) => {
  assert.ok(BASE_URL, 'set BASE_URL to the server under test, e.g. http://127.0.0.1:8000');
  assert.ok(isLoopback(BASE_URL), `BASE_URL must be a loopback URL, got ${BASE_URL}`);
  const { page, blocked, pageErrors } = await launch(t);
  const screenshot = path.join(OUTPUT_DIR, 'docs.png');
  try {
    await openDocs(page, BASE_URL);
    // Swagger UI rendered the operations (not a blank page).
    const operations = await page.locator('.opblock').count();
    assert.ok(operations >= 5, `expected at least 5 operations, Swagger UI shows ${operations}`);
    const paths = await page.locator('.opblock-summary-path').allInnerTexts();
    assert.ok(
      paths.some((p) => p.replace(/\u200b/g, '').trim() === CHATKIT_PATH),
      `no ${CHATKIT_PATH} operation among: ${paths.join(', ')}`,
    );

    // Run a threads.list request through "Try it out".
    const op = await prepareThreadsList(page);
    const { shown, body } = await execute(page, op);
    assert.equal(shown, '200', 'threads.list through Try it out did not answer 200');
    assert.match(body, /"data"/, `response body lacks "data": ${body.slice(0, 300)}`);
    assert.match(body, /"has_more"/, `response body lacks "has_more": ${body.slice(0, 300)}`);
    await op.screenshot({ path: path.join(OUTPUT_DIR, 'docs-chatkit.png') });
  } finally {
    await page.screenshot({ path: screenshot, fullPage: true }).catch(() => {});
  }

  assert.deepEqual(blocked, [], `the page tried to reach non-loopback URLs: ${blocked.join(', ')}`);
  assert.deepEqual(pageErrors, [], `uncaught errors in the page: ${pageErrors.join('; ')}`);
});

test(
  "with AUTH_MODE=jwt, Try it out answers 401 until a token is entered through Authorize",
  { timeout: 90_000, skip: !AUTH_BASE_URL || !AUTH_TOKEN ? 'AUTH_BASE_URL and AUTH_TOKEN not set' : false },
  async (t) => {
    assert.ok(isLoopback(AUTH_BASE_URL), `AUTH_BASE_URL must be a loopback URL, got ${AUTH_BASE_URL}`);
    const { page, blocked, pageErrors } = await launch(t);
    try {
      await openDocs(page, AUTH_BASE_URL);
      const op = await prepareThreadsList(page);

      const anonymous = await execute(page, op);
      assert.equal(anonymous.authorization, undefined, 'an Authorization header was sent before authorizing');
      assert.equal(anonymous.shown, '401', `without a token: ${anonymous.body.slice(0, 300)}`);
      assert.match(anonymous.body, /bearer token/i, `the 401 does not say what is missing: ${anonymous.body}`);

      // The "Authorize" button of the bearer scheme, its dialog, the token, then close the dialog.
      await page.locator('.auth-wrapper button.authorize').first().click();
      const dialog = page.locator('.modal-ux');
      await dialog.waitFor({ state: 'visible', timeout: 10_000 });
      await dialog.locator('input#auth-bearer-value, input[type="text"]').first().fill(AUTH_TOKEN);
      await dialog.locator('button.modal-btn.authorize').first().click();
      await dialog.locator('button.btn-done').first().click();
      await dialog.waitFor({ state: 'hidden', timeout: 10_000 });

      const authorized = await execute(page, op);
      assert.equal(authorized.authorization, `Bearer ${AUTH_TOKEN}`, 'the token was not sent as a bearer token');
      assert.equal(authorized.shown, '200', `with the token: ${authorized.body.slice(0, 300)}`);
      assert.match(authorized.body, /"has_more"/, `response body lacks "has_more": ${authorized.body.slice(0, 300)}`);
      await op.screenshot({ path: path.join(OUTPUT_DIR, 'docs-authorized.png') });
    } finally {
      await page.screenshot({ path: path.join(OUTPUT_DIR, 'docs-auth.png'), fullPage: true }).catch(() => {});
    }
    assert.deepEqual(blocked, [], `the page tried to reach non-loopback URLs: ${blocked.join(', ')}`);
    assert.deepEqual(pageErrors, [], `uncaught errors in the page: ${pageErrors.join('; ')}`);
  },
);
