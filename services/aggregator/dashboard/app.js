// The national dashboard: one national view at a time, for a period; the chart, its table, the
// map and the cities' table from the read API, kept current by the live updates without reload.
// State lives in the URL (?view=, measure=, range=, lang=) so a link shows the same page.
import { applyStrings, t, updateLanguageLink } from './i18n.js';
import { describeText, formatFull, formatWindow, measureOf } from './format.js';
import { csvPath, listFigures, listViews, subscribe } from './api.js';
import { Chart } from './chart.js';
import { renderCities, renderFigures } from './table.js';
import { renderMap } from './map.js';

const RANGES = { '6h': 6 * 3600e3, '24h': 24 * 3600e3, '7d': 7 * 24 * 3600e3 };

const state = {
  views: [],
  view: null,
  measure: null,
  range: '24h',
  figures: new Map(), // window start (ISO) -> newest figure
  quality: null,
  unsubscribe: null,
  paused: false, // the reader paused live updates (WCAG 2.2.2)
  generation: 0, // a newer load makes an older one's answers stale
};

const $ = (id) => document.getElementById(id);
let chart = null;

function viewKey(v) { return `${v.dataset}/${v.view}`; }

function readUrl() {
  const params = new URLSearchParams(window.location.search);
  return { view: params.get('view'), measure: params.get('measure'), range: params.get('range') };
}

function writeUrl() {
  const params = new URLSearchParams(window.location.search);
  if (state.view) params.set('view', viewKey(state.view));
  if (state.measure) params.set('measure', state.measure);
  params.set('range', state.range);
  history.replaceState(null, '', `?${params.toString()}`);
  updateLanguageLink();
}

function period() {
  const to = new Date(Date.now() + 24 * 3600e3);
  const from = new Date(Date.now() - RANGES[state.range]);
  return { from, to };
}

function showError(message) {
  const box = $('error');
  box.hidden = !message;
  box.textContent = message || '';
}

function setLive(kind) {
  $('live-state').dataset.state = kind;
  $('live-text').textContent = t({ live: 'live', reconnecting: 'reconnecting', paused: 'paused' }[kind] || 'connecting');
}

// The measures the view's figures carry, in the order they first appear (a window whose cities
// published no cell has none).
function measures() {
  const names = [];
  const add = (f) => { for (const m of (f && f.totals) || []) if (!names.includes(m.measure)) names.push(m.measure); };
  for (const f of state.figures.values()) add(f);
  if (state.view) add(state.view.latest);
  return names;
}

function fillSelectors() {
  const views = $('view-select');
  views.replaceChildren(...state.views.map((v) => {
    const o = document.createElement('option');
    o.value = viewKey(v);
    o.textContent = `${v.dataset} · ${v.view}`;
    o.selected = v === state.view;
    return o;
  }));
  const names = measures();
  if (!names.includes(state.measure)) state.measure = names.includes('count') ? 'count' : names[0] || null;
  const measureSelect = $('measure-select');
  measureSelect.replaceChildren(...names.map((m) => {
    const o = document.createElement('option');
    o.value = m;
    o.textContent = m;
    o.selected = m === state.measure;
    return o;
  }));
  measureSelect.disabled = names.length === 0;
  for (const b of document.querySelectorAll('button.range')) {
    b.setAttribute('aria-pressed', String(b.dataset.range === state.range));
  }
}

function render() {
  const { from, to } = period();
  const cities = state.view.cities;
  const figures = [...state.figures.values()].sort((a, b) => a.window_start.localeCompare(b.window_start));
  const measure = state.measure;
  const windowSeconds = figures.length > 0
    ? (Date.parse(figures[0].window_end) - Date.parse(figures[0].window_start)) / 1000 : 900;

  // The chart's model.
  const model = { cities, x: [], national: [], parts: cities.map(() => []), revised: [], withheld: [], windowSeconds };
  const latest = new Map(); // city -> {measure, window_start} of the newest figure with its part
  const reported = new Map();
  figures.forEach((f, i) => {
    model.x.push(Date.parse(f.window_start) / 1000);
    const total = measureOf(f.totals, measure);
    const hasValue = total && total.value !== null && total.value !== undefined;
    model.national.push(hasValue ? total.value : null);
    // Withheld (a total whose parts were all withheld) is hatched; no total at all (no cell) is
    // only a gap.
    if (total && !hasValue) model.withheld.push(i);
    if (f.revision > 0) model.revised.push(i);
    cities.forEach((c, j) => {
      const part = (f.cities || []).find((p) => p.city === c);
      const m = part ? measureOf(part.measures, measure) : null;
      model.parts[j].push(m && m.value !== null && m.value !== undefined ? m.value : null);
      if (part) {
        latest.set(c, { measure: m, window_start: f.window_start });
        reported.set(c, (reported.get(c) || 0) + 1);
      }
    });
  });
  chart.render(model);

  const newest = figures[figures.length - 1];
  $('chart-summary').textContent = figures.length === 0 ? t('summaryEmpty') : t('summary', {
    count: figures.length,
    from: formatFull(figures[0].window_start),
    to: formatFull(newest.window_end),
    window: formatWindow(newest.window_start),
    value: describeText(measureOf(newest.totals, measure)),
    withheld: model.withheld.length,
    revised: model.revised.length,
  });
  renderFigures($('figures-table'), [...figures].reverse(), cities, measure);
  renderMap($('map'), cities, latest);
  renderCities($('cities-table'), cities, latest, reported, figures.length, state.quality, windowSeconds);
  $('csv-link').href = csvPath(state.view, from, to);
  document.body.dataset.figures = String(figures.length);
}

// Announces what a push brought, once per push (aria-live polite).
let pending = [];
let announceTimer = null;
function announce(figure, previous) {
  pending.push({ figure, previous });
  if (announceTimer) return;
  announceTimer = setTimeout(() => {
    announceTimer = null;
    const items = pending;
    pending = [];
    let text;
    if (items.length > 1) {
      text = t('announceMore', { n: items.length });
    } else {
      const { figure: f, previous: p } = items[0];
      const value = describeText(measureOf(f.totals, state.measure));
      text = p ? t('announceRevised', { window: formatWindow(f.window_start), value, previous: describeText(measureOf(p.totals, state.measure)) })
        : t('announceNew', { window: formatWindow(f.window_start), value });
    }
    $('announcer').textContent = text;
  }, 500);
}

function onFigure(f) {
  const { from } = period();
  if (Date.parse(f.window_start) < from.getTime()) return;
  const had = state.figures.get(f.window_start);
  if (had && had.revision >= f.revision) return;
  state.figures.set(f.window_start, f);
  const before = measures();
  if (before.length > 0 && !before.includes(state.measure)) fillSelectors();
  render();
  announce(f, had);
}

async function load() {
  const generation = ++state.generation;
  if (state.unsubscribe) state.unsubscribe();
  state.unsubscribe = null;
  setLive('connecting');
  writeUrl();
  const { from, to } = period();
  try {
    const figures = await listFigures(state.view, from, to);
    if (generation !== state.generation) return;
    state.figures = new Map(figures.map((f) => [f.window_start, f]));
    showError('');
    fillSelectors();
    render();
    if (state.paused) {
      setLive('paused');
      document.body.dataset.ready = 'true';
      return;
    }
    // The newest event id of what was loaded: the stream sends everything decided after it.
    let after = null;
    for (const f of figures) if (!after || compareIds(f.event_id, after) > 0) after = f.event_id;
    state.unsubscribe = subscribe(state.view, after, {
      figure: onFigure,
      feedQuality: (cities) => { state.quality = cities; render(); },
      reset: () => load(),
      state: setLive,
    });
  } catch (e) {
    showError(t('loadFailed', { error: e.message }));
  }
  document.body.dataset.ready = 'true';
}

function compareIds(a, b) {
  const pa = a.split('.').map(BigInt);
  const pb = b.split('.').map(BigInt);
  for (let i = 0; i < 3; i += 1) if (pa[i] !== pb[i]) return pa[i] < pb[i] ? -1 : 1;
  return 0;
}

async function start() {
  applyStrings();
  chart = new Chart($('chart'), $('legend'));
  const wanted = readUrl();
  if (RANGES[wanted.range]) state.range = wanted.range;
  state.measure = wanted.measure;
  try {
    state.views = await listViews();
  } catch (e) {
    showError(t('loadFailed', { error: e.message }));
    document.body.dataset.ready = 'true';
    return;
  }
  if (state.views.length === 0) {
    showError(t('noViews'));
    document.body.dataset.ready = 'true';
    return;
  }
  state.view = state.views.find((v) => viewKey(v) === wanted.view) || state.views[0];
  state.quality = state.view.feed_quality || null;
  fillSelectors();
  $('view-select').addEventListener('change', (e) => {
    state.view = state.views.find((v) => viewKey(v) === e.target.value) || state.views[0];
    state.quality = state.view.feed_quality || null;
    state.measure = null;
    state.figures = new Map();
    load();
  });
  $('measure-select').addEventListener('change', (e) => {
    state.measure = e.target.value;
    writeUrl();
    render();
  });
  $('live-toggle').addEventListener('click', () => {
    state.paused = !state.paused;
    $('live-toggle').setAttribute('aria-pressed', String(state.paused));
    if (state.paused) {
      if (state.unsubscribe) state.unsubscribe();
      state.unsubscribe = null;
      setLive('paused');
    } else {
      load(); // what was decided meanwhile, then live again
    }
  });
  for (const b of document.querySelectorAll('button.range')) {
    b.addEventListener('click', () => {
      state.range = b.dataset.range;
      fillSelectors();
      load();
    });
  }
  await load();
}

start();
