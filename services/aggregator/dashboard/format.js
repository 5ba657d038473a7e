// Numbers, instants and values as the reader's language writes them, in Dutch time
// (Europe/Amsterdam), and what a measure's value means: a number, withheld, partly withheld (a
// lower bound) or perturbed — never 0 for what was withheld.
import { locale, t } from './i18n.js';

export const TIME_ZONE = 'Europe/Amsterdam';

const number = new Intl.NumberFormat(locale, { maximumFractionDigits: 1 });
const dateTime = new Intl.DateTimeFormat(locale, {
  timeZone: TIME_ZONE, weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit',
});
const time = new Intl.DateTimeFormat(locale, { timeZone: TIME_ZONE, hour: '2-digit', minute: '2-digit' });
const day = new Intl.DateTimeFormat(locale, { timeZone: TIME_ZONE, weekday: 'short', day: 'numeric', month: 'short' });
const fullDateTime = new Intl.DateTimeFormat(locale, {
  timeZone: TIME_ZONE, dateStyle: 'long', timeStyle: 'short',
});

export function formatNumber(n) { return number.format(n); }
export function formatWindow(iso) { return dateTime.format(new Date(iso)); }
export function formatTime(iso) { return time.format(new Date(iso)); }
export function formatDay(iso) { return day.format(new Date(iso)); }
export function formatFull(iso) { return fullDateTime.format(new Date(iso)); }

// A duration in seconds, roughly: "40 s", "12 min", "3 uur", "2 dagen".
export function formatAge(seconds) {
  if (seconds < 90) return t('secondsAgo', { n: Math.round(seconds) });
  if (seconds < 90 * 60) return t('minutesAgo', { n: Math.round(seconds / 60) });
  if (seconds < 36 * 3600) return t('hoursAgo', { n: Math.round(seconds / 3600) });
  return t('daysAgo', { n: Math.round(seconds / 86400) });
}

// The measure named `name` of a list as the API gives it ({measure, value, withheld_cells,
// perturbed}); null when the list has none.
export function measureOf(measures, name) {
  return (measures || []).find((m) => m.measure === name) || null;
}

// What a measure's value says: {kind, value, text}. kind: 'value', 'partial' (withheld cells
// left out: a lower bound), 'withheld' (nothing could be combined), 'none' (the part or total is
// there but published no cell with this measure) or 'missing' (no such part: the city is not in
// the window). `perturbed` when an included value is cell-key perturbed.
export function describe(m, absent = 'missing') {
  if (!m) return { kind: absent, value: null, perturbed: false, text: t(absent === 'none' ? 'noData' : 'missing') };
  if (m.value === null || m.value === undefined) {
    return { kind: 'withheld', value: null, perturbed: false, text: t('withheld') };
  }
  const text = formatNumber(m.value);
  if (m.withheld_cells > 0) {
    return { kind: 'partial', value: m.value, perturbed: !!m.perturbed, text: t('lowerBound', { value: text }) };
  }
  return { kind: 'value', value: m.value, perturbed: !!m.perturbed, text };
}

// The same as plain text for announcements and summaries.
export function describeText(m, absent = 'none') {
  const d = describe(m, absent);
  return d.perturbed ? `${d.text} (${t('perturbedMark')})` : d.text;
}
