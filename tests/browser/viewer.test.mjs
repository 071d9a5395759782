// The viewer in a real browser: Debian's chromium driven by playwright-core, the page loaded
// through Envoy. Run by tests/tests/viewer.rs, which starts the stack, fills the trail and
// sets the environment: VIEWER_PHASE (`intact`, `tampered-unloaded`, `tampered` or `senders`), SERVICE_URL (Envoy),
// COLLECTOR_URL (the collector itself, to read expectations without adding to the trail),
// AUDIT_TOKEN, INGEST_TOKEN, MARKUP (what the hostile requests carried), SINCE/UNTIL (the
// test's requests), TAMPERED_SEQ; VIEWER_SCREENSHOT, when set, is where to save a screenshot.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

const env = process.env;
const VIEWER = `${env.SERVICE_URL}/audit/ui/`;
const PHASE = env.VIEWER_PHASE;
const WAIT = { timeout: 20_000 };

let context;
let profile;
let page;
const pageErrors = [];
const dialogs = [];

before(async () => {
  profile = mkdtempSync(join(tmpdir(), 'viewer-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1440, height: 960 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (error) => pageErrors.push(String(error)));
  page.on('console', (message) => {
    if (message.type() === 'error' && !/status of 40[13]/.test(message.text())) pageErrors.push(message.text());
  });
  page.on('dialog', async (dialog) => {
    dialogs.push(dialog.message());
    await dialog.dismiss();
  });
});

after(async () => {
  await context?.close();
  rmSync(profile, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
});

/** Every event of the trail through the collector directly (not audited), oldest first. */
async function trail(query = '') {
  const events = [];
  let url = `${env.COLLECTOR_URL}/audit?pageSize=100${query ? `&${query}` : ''}`;
  while (url) {
    const response = await fetch(url, { headers: { Authorization: `Bearer ${env.AUDIT_TOKEN}` } });
    assert.equal(response.status, 200, `GET ${url}`);
    const body = await response.json();
    events.push(...body.events);
    url = body._links.next?.href;
  }
  return events;
}

async function signIn(token = env.AUDIT_TOKEN) {
  await page.locator('#token-dialog').waitFor({ state: 'visible', ...WAIT });
  await page.fill('#token-input', token);
  await page.click('#token-dialog button[type=submit]');
}

async function rowCount() {
  return page.locator('#events-body tr').count();
}

async function waitForRows(atLeast = 1) {
  await page.waitForFunction((n) => document.querySelectorAll('#events-body tr').length >= n, atLeast, WAIT);
}

function outcomeOf(status) {
  if (status >= 100 && status <= 399) return 'success';
  if (status === 401) return 'failedLogin';
  if (status === 403) return 'forbidden';
  return 'error';
}

if (PHASE === 'intact') {
  test('a wrong token gets a clear message, a read token opens the trail', async () => {
    await page.goto(VIEWER);
    await signIn('not-a-token');
    const error = page.locator('#token-error');
    await error.waitFor({ state: 'visible', ...WAIT });
    assert.match(await error.textContent(), /did not accept this token/);
    await signIn(env.INGEST_TOKEN);
    await page.waitForFunction(() => /not a read token/.test(document.getElementById('token-error').textContent), null, WAIT);
    await signIn();
    await waitForRows();
    assert.equal(await page.locator('#token-dialog').isVisible(), false);
    const stored = await page.evaluate(() => [sessionStorage.length, localStorage.length, document.cookie]);
    assert.deepEqual(stored, [1, 0, ''], 'the token is in sessionStorage only');
  });

  test('events are newest first, 50 to a page; scrolling to the end, or "Load more", reads the next page', async () => {
    assert.ok((await trail()).length > 100, 'the trail holds more than two pages');
    await page.goto(VIEWER);
    await waitForRows(50);
    assert.equal(await rowCount(), 50, 'one page while the end of the table is out of view');
    const seqs = await page.$$eval('#events-body tr', (rows) => rows.map((row) => Number(row.dataset.seq)));
    assert.deepEqual(seqs, [...seqs].sort((a, b) => b - a), 'newest (highest seq) first');
    // The end of the table in view loads the next page (its rows then push the end out of view).
    await page.locator('#scroll-sentinel').scrollIntoViewIfNeeded();
    await page.waitForFunction(() => document.getElementById('events-count').textContent === '100 shown, more below', null, WAIT);
    const more = await page.$$eval('#events-body tr', (rows) => rows.map((row) => Number(row.dataset.seq)));
    assert.deepEqual(more.slice(0, 50), seqs, 'the second page follows the first');
    assert.ok(more[50] < seqs[49], 'and continues below it');
    // "Load more" reads one page too. Clicked where it is, without scrolling to it: scrolling
    // there would bring the end of the table into view, which loads a page by itself.
    assert.equal(await page.locator('#load-more').isVisible(), true);
    await page.locator('#load-more').dispatchEvent('click');
    await waitForRows(101);
    const third = await page.$$eval('#events-body tr', (rows) => rows.map((row) => Number(row.dataset.seq)));
    assert.ok(third.length > 100 && third.length <= 150, `${third.length} rows after one more page`);
    assert.deepEqual(third.slice(0, 100), more, 'the third page follows the second');
    assert.ok(third[100] < more[99], 'and continues below it');
  });

  test('a filter narrows the table, lives in the URL and survives a reload', async () => {
    await page.goto(VIEWER);
    await waitForRows();
    await page.selectOption('select[name=method]', 'PUT');
    await page.click('#filters button[type=submit]');
    await page.waitForFunction(() => new URL(window.location.href).searchParams.get('method') === 'PUT', null, WAIT);
    await page.waitForFunction(() => {
      const methods = Array.from(document.querySelectorAll('#events-body td.method'), (cell) => cell.textContent);
      return methods.length === 2 && methods.every((method) => method === 'PUT');
    }, null, WAIT);
    await page.reload();
    await page.waitForFunction(() => document.querySelectorAll('#events-body td.method').length === 2, null, WAIT);
    assert.equal(await page.inputValue('select[name=method]'), 'PUT');
    const puts = (await trail('method=PUT')).map((event) => event.uuid).reverse();
    const shown = await page.$$eval('#events-body tr', (rows) => rows.map((row) => row.dataset.uuid));
    assert.deepEqual(shown, puts);
  });

  test("an event's detail is the whole event as served", async () => {
    await page.goto(`${VIEWER}?method=PUT`);
    await waitForRows();
    const uuid = await page.locator('#events-body tr').first().getAttribute('data-uuid');
    await page.locator('#events-body tr').first().click();
    await page.locator('#detail').waitFor({ state: 'visible', ...WAIT });
    const shown = JSON.parse(await page.textContent('#detail-json'));
    const response = await fetch(`${env.COLLECTOR_URL}/audit?from=${uuid}&pageSize=1`, {
      headers: { Authorization: `Bearer ${env.AUDIT_TOKEN}` },
    });
    const [served] = (await response.json()).events;
    assert.deepEqual(shown, served);
    assert.match(await page.textContent('#detail-facts'), new RegExp(uuid));
  });

  test('markup and script in every captured field are shown as text and never run', async () => {
    const hostile = (await trail(`since=${encodeURIComponent(env.SINCE)}&until=${encodeURIComponent(env.UNTIL)}`))
      .filter((event) => /__pwned|onerror/.test(JSON.stringify(event)));
    assert.ok(hostile.length >= 4, `${hostile.length} hostile events in the trail`);
    await page.goto(`${VIEWER}?since=${encodeURIComponent(env.SINCE)}&until=${encodeURIComponent(env.UNTIL)}&sort=%2Btimestamp`);
    await waitForRows(10);
    const tableText = await page.textContent('#events-body');
    assert.ok(tableText.includes(env.MARKUP), 'the basic-auth user name shows as the text it was');
    for (const event of hostile) {
      await page.locator(`#events-body tr[data-uuid="${event.uuid}"]`).click();
      const detail = await page.textContent('#detail-json');
      assert.deepEqual(JSON.parse(detail), event, `event ${event.uuid} is shown whole, as text`);
    }
    assert.ok((await page.textContent('#detail-json')).length > 0);
    const facts = await page.evaluate(() => ({
      pwned: window.__pwned ?? null,
      scripts: Array.from(document.scripts, (script) => script.getAttribute('src')),
      images: Array.from(document.images, (image) => image.getAttribute('src')),
    }));
    assert.deepEqual(facts, { pwned: null, scripts: ['app.js'], images: ['icon.svg'] });
    assert.deepEqual(dialogs, []);
  });

  test('a user name with a right-to-left override shows escaped, and its event carries the alert', async () => {
    const window = `since=${encodeURIComponent(env.SINCE)}&until=${encodeURIComponent(env.UNTIL)}`;
    const spoofed = (await trail(window)).filter((event) => event.user_name === 'admin\u202Egnp.exe');
    assert.equal(spoofed.length, 1, 'the name is stored as sent');
    assert.deepEqual(spoofed[0].alerts, ['invisible_characters']);
    await page.goto(`${VIEWER}?${window}&sort=%2Btimestamp`);
    await waitForRows(10);
    const row = page.locator(`#events-body tr[data-uuid="${spoofed[0].uuid}"]`);
    assert.equal(await row.locator('td.who span').first().textContent(), 'admin⟨U+202E⟩gnp.exe');
    assert.equal(await row.locator('td.who .hidden-char').count(), 1, 'the escape is marked');
    await row.click();
    await page.locator('#detail').waitFor({ state: 'visible', ...WAIT });
    const json = await page.textContent('#detail-json');
    assert.ok(json.includes('"user_name": "admin\\u202Egnp.exe"'), 'the as-served JSON shows the escape');
    assert.deepEqual(JSON.parse(json), spoofed[0], 'and still parses to the event as served');
    assert.match(await page.textContent('#detail-facts'), /who\s*admin⟨U\+202E⟩gnp\.exe/);
    assert.match(await page.textContent('#detail-facts'), /alerts\s*invisible_characters/);
    const raw = await page.evaluate(() => {
      const texts = [document.body.innerText, ...Array.from(document.querySelectorAll('*'), (node) => Array.from(node.attributes, (a) => a.value).join(' '))];
      return texts.filter((text) => /[\u202A-\u202E\u2066-\u2069\u200B-\u200F]/.test(text)).length;
    });
    assert.equal(raw, 0, 'no raw bidi or zero-width character anywhere on the page');
  });

  test('a search for a basic-auth user finds their events: the user_name filter over the trail, and find in the loaded events', async () => {
    const mallory = await trail('user_name=mallory');
    assert.equal(mallory.length, 2, 'the two requests mallory made');
    await page.goto(VIEWER);
    await waitForRows();
    await page.fill('input[name=user_name]', 'mallory');
    await page.click('#filters button[type=submit]');
    await page.waitForFunction(() => new URL(window.location.href).searchParams.get('user_name') === 'mallory', null, WAIT);
    await page.waitForFunction(() => document.querySelectorAll('#events-body tr').length === 2, null, WAIT);
    const shown = await page.$$eval('#events-body tr', (rows) => rows.map((row) => row.dataset.uuid));
    assert.deepEqual(shown, mallory.map((event) => event.uuid).reverse(), 'exactly mallory\'s events, newest first');
    const who = await page.$$eval('#events-body td.who span:first-child', (cells) => cells.map((cell) => cell.textContent));
    assert.deepEqual(who, ['mallory', 'mallory']);

    const window = `since=${encodeURIComponent(env.SINCE)}&until=${encodeURIComponent(env.UNTIL)}`;
    const inWindow = (await trail(window)).length;
    await page.goto(`${VIEWER}?${window}&sort=%2Btimestamp`);
    await waitForRows(50);
    const loaded = await rowCount();
    assert.ok(loaded < inWindow, `${loaded} of the window's ${inWindow} events loaded`);
    await page.fill('#find', 'MALLORY delete');
    const deleted = mallory.filter((event) => event.payload.method === 'DELETE').map((event) => event.uuid);
    const visible = await page.$$eval('#events-body tr:not(.unmatched)', (rows) => rows.map((row) => row.dataset.uuid));
    assert.deepEqual(visible, deleted, 'every word, any case');
    assert.equal(
      await page.textContent('#find-state'),
      `1 of ${loaded} loaded events match; events not loaded yet are not searched (load more, or use the filters above)`,
    );
    // Hiding rows brings the end of the table into view; that loads nothing by itself, so what
    // Find searched stays what it says. "Load more" does, and Find searches those events too.
    await page.click('#load-more');
    // A page's rows and Find's count are updated together.
    await waitForRows(loaded + 1);
    const afterMore = await rowCount();
    assert.ok(afterMore <= loaded + 50, `${afterMore} rows after one more page`);
    const more = afterMore < inWindow ? '; events not loaded yet are not searched (load more, or use the filters above)' : '';
    assert.equal(await page.textContent('#find-state'), `1 of ${afterMore} loaded events match${more}`);
    assert.deepEqual(await page.$$eval('#events-body tr:not(.unmatched)', (rows) => rows.map((row) => row.dataset.uuid)), deleted);
    await page.fill('#find', 'U+202E');
    const spoofed = await page.$$eval('#events-body tr:not(.unmatched) td.who > span:first-child', (cells) => cells.map((cell) => cell.textContent));
    assert.deepEqual(spoofed, ['admin⟨U+202E⟩gnp.exe'], 'an invisible character is found by the code point shown');
    await page.fill('#find', '');
    assert.equal(await page.locator('#events-body tr.unmatched').count(), 0);
  });

  test('the chart counts the events of the window by outcome, as the trail holds them', async () => {
    const window = `since=${encodeURIComponent(env.SINCE)}&until=${encodeURIComponent(env.UNTIL)}`;
    const expected = { success: 0, failedLogin: 0, forbidden: 0, error: 0 };
    for (const event of await trail(window)) expected[outcomeOf(event.response?.status ?? 0)] += 1;
    assert.ok(expected.success > 50 && expected.failedLogin >= 2 && expected.forbidden >= 1 && expected.error >= 1, JSON.stringify(expected));
    await page.goto(`${VIEWER}?${window}`);
    await page.waitForSelector('#activity-legend li', WAIT);
    const legend = await page.$$eval('#activity-legend li', (items) =>
      Object.fromEntries(items.map((item) => [item.dataset.outcome, Number(item.querySelector('.count').textContent)])));
    assert.deepEqual(legend, expected);
    const bars = await page.$$eval('#activity-chart g.bar', (groups) => groups.reduce((sum, group) => sum + Number(group.dataset.total), 0));
    const total = Object.values(expected).reduce((sum, n) => sum + n, 0);
    assert.equal(bars, total, 'the bars add up to the events of the window');
  });

  test('follow mode picks up a new request, and pauses', async () => {
    await page.goto(VIEWER);
    await waitForRows();
    await page.click('#follow');
    const marker = `follow-${Date.now()}`;
    const answer = await fetch(`${env.SERVICE_URL}/pacticipants?marker=${marker}`);
    await answer.arrayBuffer();
    // The page's own polls are audited too, so the new request need not be the top row.
    await page.waitForFunction(
      (text) => Array.from(document.querySelectorAll('#events-body tr.fresh td.path')).some((cell) => cell.textContent.includes(text)),
      marker,
      WAIT,
    );
    await page.click('#follow');
    assert.equal(await page.getAttribute('#follow', 'aria-pressed'), 'false');
  });

  test('verify what I see says which signed events it did not check, and checks them all on request', async () => {
    await page.goto(VIEWER);
    await waitForRows(50);
    await page.waitForFunction(() => /number \d+/.test(document.getElementById('checkpoint-facts').textContent), null, WAIT);
    await page.click('#verify');
    await page.waitForSelector('#verify-result.pass, #verify-result.fail, #verify-result.partial', WAIT);
    const verdict = await page.textContent('#verify-result');
    assert.doesNotMatch(verdict, /intact/i, `the older signed events are not loaded, so nothing reads as intact: ${verdict}`);
    assert.match(verdict, /proven by checkpoint \d+'s signature: seq \d+ to \d+/, verdict);
    assert.match(verdict, /NOT checked: seq 1 to \d+ \(\d+ events that checkpoint \d+ signs, not loaded\)/, verdict);
    assert.match(verdict, /seq \d+ carries the hash checkpoint \d+ signed/, 'verify loaded back to the signed event');
    assert.doesNotMatch(verdict, /not checked:/, 'the Ed25519 signature was checked');
    await page.click('#verify-range');
    await page.waitForSelector('#verify-result.pass, #verify-result.fail', WAIT);
    const whole = await page.textContent('#verify-result');
    assert.match(whole, /Intact: all \d+ events checkpoint \d+ signs \(seq 1 to \d+\) verify against its signature/, whole);
    if (env.VIEWER_SCREENSHOT) {
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: resolve(env.REPO_ROOT, env.VIEWER_SCREENSHOT) });
    }
    assert.deepEqual(pageErrors, []);
  });
}

if (PHASE === 'tampered') {
  test('verify what I see names the event whose stored body was changed', async () => {
    await page.goto(VIEWER);
    await signIn();
    await waitForRows(50);
    await page.click('#verify');
    await page.waitForSelector('#verify-result.pass, #verify-result.fail', WAIT);
    const verdict = await page.textContent('#verify-result');
    assert.match(verdict, /NOT INTACT/, verdict);
    assert.match(verdict, new RegExp(`seq ${env.TAMPERED_SEQ} \\(event [^)]*\\): event CHANGED`), verdict);
    const marked = await page.$$eval('#events-body tr.broken', (rows) => rows.map((row) => row.dataset.seq));
    assert.deepEqual(marked, [env.TAMPERED_SEQ]);
  });
}

if (PHASE === 'tampered-unloaded') {
  test('a changed event that is not loaded never reads as intact, and checking the signed range names it', async () => {
    const seq = Number(env.TAMPERED_SEQ);
    await page.goto(VIEWER);
    await signIn();
    await waitForRows(50);
    assert.equal(await page.locator(`#events-body tr[data-seq="${seq}"]`).count(), 0, `seq ${seq} is not loaded`);
    await page.click('#verify');
    await page.waitForSelector('#verify-result.pass, #verify-result.fail, #verify-result.partial', WAIT);
    const verdict = await page.textContent('#verify-result');
    assert.equal(await page.getAttribute('#verify-result', 'class'), 'verdict partial', verdict);
    const pageText = await page.evaluate(() => document.body.innerText);
    assert.doesNotMatch(pageText, /intact/i, 'nothing on the page reads as intact');
    const [, first, last] = verdict.match(/NOT checked: seq (\d+) to (\d+)/) ?? [];
    assert.ok(Number(first) <= seq && seq <= Number(last), `seq ${seq} is named as not checked: ${verdict}`);
    await page.click('#verify-range');
    await page.waitForSelector('#verify-result.pass, #verify-result.fail', WAIT);
    const whole = await page.textContent('#verify-result');
    assert.match(whole, /NOT INTACT: 1 problem in seq 1 to \d+, which checkpoint \d+ signs/, whole);
    assert.match(whole, new RegExp(`seq ${seq} \\(event [^)]*\\): event CHANGED`), whole);
    assert.doesNotMatch(await page.evaluate(() => document.body.innerText), /\bIntact\b/);
  });
}

if (PHASE === 'senders') {
  test('a sender that stopped cleanly is shown muted, one that fell silent in red', async () => {
    const finished = await trail(`type=${encodeURIComponent('AuditSidecar::SenderFinished')}`);
    const silent = await trail(`type=${encodeURIComponent('AuditSidecar::SenderStopped')}`);
    assert.ok(finished.length > 0 && finished.every((event) => !event.gap.lostEvents), 'Envoy stopped cleanly, nothing lost');
    assert.ok(silent.length > 0, 'the killed Envoy fell silent');
    /** The path cells of the records of `type` shown (the first page: another worker's may follow). */
    async function shown(type) {
      await page.goto(`${VIEWER}?type=${encodeURIComponent(type)}`);
      if (await page.locator('#token-dialog').isVisible()) await signIn();
      await waitForRows();
      return page.$$eval('#events-body td.path', (cells) => cells.map((cell) => ({
        cls: cell.className, text: cell.textContent, color: getComputedStyle(cell).color,
      })));
    }
    const colour = async (variable) => page.evaluate((name) => {
      const probe = document.body.appendChild(document.createElement('span'));
      probe.style.color = `var(${name})`;
      const value = getComputedStyle(probe).color;
      probe.remove();
      return value;
    }, variable);
    for (const cell of await shown('AuditSidecar::SenderFinished')) {
      assert.equal(cell.cls, 'path gap clean');
      assert.match(cell.text, /^sender stopped cleanly: all \d+ of its events stored, nothing unknown$/);
      assert.equal(cell.color, await colour('--muted'));
    }
    for (const cell of await shown('AuditSidecar::SenderStopped')) {
      assert.equal(cell.cls, 'path gap');
      assert.match(cell.text, /^sender fell silent: /);
      assert.doesNotMatch(cell.text, /undefined|null/, cell.text);
      assert.equal(cell.color, await colour('--error'));
    }
    assert.notEqual(await colour('--muted'), await colour('--error'));
  });
}
