// The dashboard test's browser: Debian's Chromium driven by playwright-core (from setup's npm
// cache, POLDER_NPM_HOME), one command per line on stdin, one JSON answer per line on stdout
// ({"ok": true, ...} or {"ok": false, "error": "..."}). The assertions stay in the C++ test
// (dashboard_test.cc); this script only does what a reader's browser does and reports the page.
//
// The aggregator's certificate is trusted by its public key alone
// (--ignore-certificate-errors-spki-list, the SPKI the test computed from the certificate it
// generated), not by turning certificate checks off.
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

const home = process.env.POLDER_NPM_HOME;
if (!home) {
  process.stdout.write(`${JSON.stringify({ ok: false, error: 'POLDER_NPM_HOME is not set' })}\n`);
  process.exit(1);
}
const require = createRequire(`${home}/node_modules/`);
const { chromium } = require('playwright-core');

let browser = null;
let context = null;
let page = null;
const consoleErrors = [];

function chromiumPath() {
  for (const p of ['/usr/lib/chromium/chromium', '/usr/bin/chromium']) if (existsSync(p)) return p;
  throw new Error('Chromium is not installed (apt install chromium; tools/setup/setup.sh does)');
}

// What the page shows, read from the DOM as a reader (or a screen reader) gets it.
function readFigures() {
  return [...document.querySelectorAll('#figures-table tbody tr[data-window]')].map((tr) => {
    const cells = {};
    for (const td of tr.querySelectorAll('td[data-col]')) {
      cells[td.dataset.col] = {
        kind: td.dataset.kind || '', value: td.dataset.value === undefined ? null : Number(td.dataset.value), text: td.textContent.trim(),
      };
    }
    return {
      window: tr.dataset.window, revision: Number(tr.dataset.revision), revised: tr.dataset.revised === 'true',
      complete: tr.dataset.complete === 'true', event_id: tr.dataset.eventId, cells,
    };
  });
}

function readCities() {
  return [...document.querySelectorAll('#cities-table tbody tr[data-city]')].map((tr) => {
    const cells = {};
    for (const td of tr.querySelectorAll('td[data-col]')) {
      cells[td.dataset.col] = { kind: td.dataset.kind || '', value: td.dataset.value === undefined ? null : Number(td.dataset.value), text: td.textContent.trim() };
    }
    return { city: tr.dataset.city, cells };
  });
}

function readMap() {
  return [...document.querySelectorAll('#map-cities g[data-city]')].map((g) => ({
    city: g.dataset.city, kind: g.dataset.kind, text: [...g.querySelectorAll('text')].map((x) => x.textContent).join(' '),
  }));
}

// The controls a keyboard must reach: visible, enabled, focusable by Tab.
function listControls() {
  const all = document.querySelectorAll('a[href], button, select, input, textarea, [tabindex]');
  return [...all].filter((el) => {
    if (el.disabled || el.tabIndex < 0) return false;
    const r = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    // The skip link is off-screen until focused: it counts.
    return el.classList.contains('skip-link') || (r.width > 0 && r.height > 0 && style.visibility !== 'hidden');
  }).map((el) => el.id || el.dataset.range || `${el.tagName.toLowerCase()}.${el.className}`);
}

function active() {
  const el = document.activeElement;
  if (!el || el === document.body) return 'body';
  return el.id || el.dataset.range || `${el.tagName.toLowerCase()}.${el.className}`;
}

const commands = {
  async launch({ spki, lang }) {
    browser = await chromium.launch({
      executablePath: chromiumPath(),
      headless: true,
      args: [`--ignore-certificate-errors-spki-list=${spki}`, '--disable-gpu', '--disable-dev-shm-usage'],
    });
    context = await browser.newContext({
      locale: lang === 'en' ? 'en-GB' : 'nl-NL', timezoneId: 'Europe/Amsterdam', viewport: { width: 1280, height: 1000 },
    });
    page = await context.newPage();
    page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') consoleErrors.push(`${m.type()}: ${m.text()}`); });
    page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
    return { version: browser.version() };
  },
  async goto({ url }) {
    const response = await page.goto(url, { waitUntil: 'load' });
    await page.waitForSelector('body[data-ready="true"]', { timeout: 30000 });
    return { status: response.status(), headers: await response.allHeaders() };
  },
  async figures() { return { rows: await page.evaluate(readFigures) }; },
  async cities() { return { rows: await page.evaluate(readCities) }; },
  async map() { return { cities: await page.evaluate(readMap) }; },
  async text({ selector }) { return { text: (await page.textContent(selector)) || '' }; },
  async attribute({ selector, name }) { return { value: await page.getAttribute(selector, name) }; },
  async evaluate({ expression }) { return { value: await page.evaluate(expression) }; },
  // Waits (at most timeout_ms) for the row of `window` at `revision` or later; how long it took.
  async wait_row({ window, revision, timeout_ms }) {
    const start = Date.now();
    await page.waitForFunction(([w, r]) => {
      const tr = document.querySelector(`#figures-table tbody tr[data-window="${w}"]`);
      return tr && Number(tr.dataset.revision) >= r;
    }, [window, revision], { timeout: timeout_ms, polling: 50 });
    return { elapsed_ms: Date.now() - start };
  },
  // Tab from the top of the page through every control: the controls, and the order focus took.
  async keyboard({ extra_tabs }) {
    const controls = await page.evaluate(listControls);
    await page.evaluate(() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); });
    await page.keyboard.press('Escape');
    const order = [];
    for (let i = 0; i < controls.length + (extra_tabs || 3); i += 1) {
      await page.keyboard.press('Tab');
      order.push(await page.evaluate(active));
    }
    return { controls, order };
  },
  // Tabs until the focused control is `target` (at most max presses); then presses `key`.
  async tab_and_press({ target, key, max }) {
    for (let i = 0; i < (max || 60); i += 1) {
      if ((await page.evaluate(active)) === target) {
        await page.keyboard.press(key);
        return { presses: i };
      }
      await page.keyboard.press('Tab');
    }
    throw new Error(`Tab never reached ${target}`);
  },
  // Waits (at most timeout_ms) until `expression` is truthy on the page; its value.
  // (Polled from here: the page's CSP forbids the in-page eval waitForFunction would use.)
  async wait_for({ expression, timeout_ms }) {
    const until = Date.now() + timeout_ms;
    for (;;) {
      const value = await page.evaluate(expression);
      if (value) return { value };
      if (Date.now() > until) throw new Error(`${expression} not true within ${timeout_ms} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  },
  async press({ key }) {
    await page.keyboard.press(key);
    return {};
  },
  async active() { return { active: await page.evaluate(active) }; },
  async axe() {
    await page.evaluate(readFileSync(`${home}/node_modules/axe-core/axe.min.js`, 'utf8'));
    const result = await page.evaluate(() => window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
    }));
    return {
      version: result.testEngine.version,
      passes: result.passes.length,
      incomplete: result.incomplete.map((v) => ({ id: v.id, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) })),
      violations: result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) })),
    };
  },
  async screenshot({ path }) {
    await page.screenshot({ path, fullPage: true });
    return { path };
  },
  async console() { return { messages: consoleErrors.splice(0) }; },
  async close() {
    if (browser) await browser.close();
    browser = null;
    return {};
  },
};

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  let answer;
  try {
    const request = JSON.parse(line);
    const fn = commands[request.cmd];
    if (!fn) throw new Error(`unknown command ${request.cmd}`);
    answer = { ok: true, ...(await fn(request)) };
  } catch (e) {
    answer = { ok: false, error: String(e && e.stack ? e.stack : e) };
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
  if (JSON.parse(line).cmd === 'close') break;
}
if (browser) await browser.close();
