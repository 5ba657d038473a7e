// The data tables: every window's figure (the chart's table alternative) and every city's
// latest value, freshness, completeness and supply. Withheld values read "afgeschermd", never 0.
import { t } from './i18n.js';
import { describe, formatAge, formatNumber, formatTime, formatWindow, measureOf } from './format.js';

function cell(tag, text, attrs = {}) {
  const el = document.createElement(tag);
  if (text !== null && text !== undefined) el.textContent = text;
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

function tag(kind, text) {
  return cell('span', text, { class: `tag ${kind}` });
}

// A value cell: its text, a tag when withheld, partly withheld or perturbed. `absent`: what a
// missing measure means here ('missing' city, or 'none': no cell with this measure).
function valueCell(measure, column, absent = 'missing') {
  const d = describe(measure, absent);
  const td = cell('td', null, { 'data-col': column, 'data-kind': d.kind });
  if (d.value !== null) td.dataset.value = String(d.value);
  if (d.kind === 'withheld' || d.kind === 'missing' || d.kind === 'none') {
    td.append(tag(d.kind === 'withheld' ? 'withheld' : 'missing', d.text));
  } else {
    td.append(document.createTextNode(formatNumber(d.value)));
    if (d.kind === 'partial') td.append(' ', tag('partial', t('partial')));
    if (d.perturbed) td.append(' ', tag('perturbed', t('perturbed')));
  }
  return td;
}

// figures: newest revision per window, newest first; cities: the view's expected cities.
export function renderFigures(table, figures, cities, measure) {
  const head = table.querySelector('thead tr');
  head.replaceChildren(
    cell('th', t('window'), { scope: 'col' }),
    cell('th', t('national'), { scope: 'col' }),
    ...cities.map((c) => cell('th', c, { scope: 'col' })),
    cell('th', t('status'), { scope: 'col' }),
  );
  const body = table.querySelector('tbody');
  const rows = figures.map((f) => {
    const tr = cell('tr', null, {
      'data-window': f.window_start, 'data-revision': String(f.revision), 'data-event-id': f.event_id,
      'data-complete': String(f.complete),
    });
    tr.append(cell('th', `${formatWindow(f.window_start)}–${formatTime(f.window_end)}`, { scope: 'row' }));
    tr.append(valueCell(measureOf(f.totals, measure), 'national', 'none'));
    for (const c of cities) {
      const part = (f.cities || []).find((p) => p.city === c);
      tr.append(part ? valueCell(measureOf(part.measures, measure), `city:${c}`, 'none')
        : valueCell(null, `city:${c}`, 'missing'));
    }
    const status = cell('td', null, { 'data-col': 'status' });
    if (f.revision > 0) {
      const change = (f.changes || []).find((ch) => ch.measure === measure);
      let text = `${t('revised')} · ${t('revision', { n: f.revision })}`;
      if (change) {
        const previous = describe({ value: change.previous_value, withheld_cells: change.previous_withheld_cells });
        text += ` · ${t('was', { value: previous.text })}`;
      }
      status.append(tag('revised', text));
      tr.dataset.revised = 'true';
    }
    if (f.complete) {
      status.append(' ', tag('complete', t('complete')));
    } else {
      status.append(' ', tag('incomplete', `${t('incomplete')} · ${t('missingCities', { cities: f.cities_missing.join(', ') })}`));
    }
    tr.append(status);
    return tr;
  });
  if (rows.length === 0) {
    rows.push(cell('tr', null));
    rows[0].append(cell('td', t('noFigures'), { colspan: String(cities.length + 3) }));
  }
  body.replaceChildren(...rows);
}

// Freshness from the city's feed quality: how old its newest record is now.
function freshness(quality, windowSeconds) {
  if (!quality || quality.freshness_seconds === null || quality.freshness_seconds === undefined) {
    return { kind: 'unknown', text: t('unknown'), detail: '' };
  }
  const measured = Date.parse(quality.measured_at);
  const age = quality.freshness_seconds + Math.max(0, (Date.now() - measured) / 1000);
  const detail = t('freshFor', { age: formatAge(age) });
  if (age <= windowSeconds + 300) return { kind: 'fresh', text: t('fresh'), detail };
  if (age <= 4 * windowSeconds + 300) return { kind: 'late', text: t('lateBadge'), detail };
  return { kind: 'stale', text: t('stale'), detail };
}

function entitiesCell(e, column) {
  const td = cell('td', null, { 'data-col': column });
  if (!e) {
    td.textContent = '—';
  } else if (e.withheld) {
    td.append(tag('withheld', t('withheld')));
  } else {
    td.append(document.createTextNode(formatNumber(e.value)));
    if (e.perturbed) td.append(' ', tag('perturbed', t('perturbed')));
  }
  return td;
}

function countCell(v, column) {
  return cell('td', v === null || v === undefined ? '—' : formatNumber(v), { 'data-col': column });
}

// latest: per city {measure, window_start} of the newest figure it is part of.
export function renderCities(table, cities, latest, reported, windows, quality, windowSeconds) {
  const body = table.querySelector('tbody');
  body.replaceChildren(...cities.map((c) => {
    const tr = cell('tr', null, { 'data-city': c });
    tr.append(cell('th', c, { scope: 'row' }));
    const last = latest.get(c);
    const value = valueCell(last ? last.measure : null, 'latest', last ? 'none' : 'missing');
    if (last) value.append(cell('span', ` (${formatTime(last.window_start)})`, { class: 'muted' }));
    tr.append(value);
    const q = quality ? quality[c] : null;
    const f = freshness(q, windowSeconds);
    const fresh = cell('td', null, { 'data-col': 'freshness', 'data-kind': f.kind });
    fresh.append(tag(`badge ${f.kind}`, f.text));
    if (f.detail) fresh.append(cell('span', ` ${f.detail}`, { class: 'muted' }));
    tr.append(fresh);
    const n = reported.get(c) || 0;
    const complete = cell('td', null, { 'data-col': 'completeness', 'data-kind': n === windows ? 'complete' : 'incomplete' });
    complete.append(tag(`badge ${n === windows ? 'fresh' : 'late'}`, t('windowsOf', { n, total: windows })));
    tr.append(complete);
    tr.append(countCell(q ? q.records_accepted : null, 'accepted'));
    tr.append(countCell(q ? q.records_rejected : null, 'rejected'));
    tr.append(countCell(q ? q.records_late : null, 'late'));
    tr.append(entitiesCell(q ? q.entities_hour : null, 'entities-hour'));
    tr.append(entitiesCell(q ? q.entities_day : null, 'entities-day'));
    return tr;
  }));
}
