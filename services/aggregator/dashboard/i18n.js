// Every string the dashboard shows, in Dutch (the default) and English. The language comes from
// ?lang= (nl or en); <html lang> follows it.

const STRINGS = {
  nl: {
    skip: 'Naar de inhoud',
    title: 'Landelijke cijfers',
    lede: 'Cijfers die steden samen publiceren, met per stad hoe vers en volledig ze zijn. Afgeschermde waarden tonen we nooit als 0.',
    language: 'Taal',
    otherLanguage: 'English',
    otherLang: 'en',
    controls: 'Keuzes',
    view: 'Weergave',
    measure: 'Maat',
    range: 'Periode',
    range6h: '6 uur',
    range24h: '24 uur',
    range7d: '7 dagen',
    download: 'Downloaden',
    csv: 'CSV (alle revisies)',
    connecting: 'Verbinden…',
    live: 'Live: nieuwe cijfers verschijnen vanzelf',
    reconnecting: 'Verbinding verbroken; opnieuw verbinden…',
    pause: 'Live-updates pauzeren',
    paused: 'Gepauzeerd: de cijfers worden niet bijgewerkt',
    series: 'Landelijk verloop',
    legend: 'Legenda',
    figuresCaption: 'Cijfers per venster, nieuwste eerst',
    window: 'Venster',
    national: 'Landelijk',
    status: 'Status',
    map: 'Kaart: laatste waarde per stad',
    mapTitle: 'Schematische kaart van Nederland met de steden en hun laatste waarde',
    mapNote: 'Schematisch: de cirkels staan op de plaats van de gemeente, hun oppervlak volgt de waarde. Dezelfde waarden staan in de tabel Steden.',
    cities: 'Steden',
    citiesCaption: 'Per stad: laatste waarde, versheid, volledigheid en aanvoer',
    city: 'Stad',
    latest: 'Laatste waarde',
    freshness: 'Versheid',
    completeness: 'Volledigheid',
    accepted: 'Ontvangen',
    rejected: 'Geweigerd',
    late: 'Te laat',
    entitiesHour: 'Sensoren (uur)',
    entitiesDay: 'Sensoren (dag)',
    notes: 'Zo leest u de cijfers',
    withheld: 'afgeschermd',
    partial: 'deels afgeschermd',
    perturbed: 'verstoord',
    revised: 'herzien',
    incomplete: 'onvolledig',
    complete: 'volledig',
    missing: 'ontbreekt',
    noData: 'geen gegevens',
    noteWithheld: 'Een stad schermt een waarde af als die over te weinig bronnen gaat of door één bron wordt bepaald. Zo\'n waarde telt niet mee en staat nooit als 0 in grafiek, kaart of tabel.',
    notePartial: 'Het landelijke totaal zonder de afgeschermde delen: een ondergrens.',
    notePerturbed: 'Kleine aantallen zijn bewust licht verstoord (cell-key-methode), zodat niemand een persoon kan herleiden.',
    noteRevised: 'Een stad leverde na de sluiting van het venster nog aan; het cijfer is herzien en de vorige waarde staat erbij.',
    noteIncomplete: 'Niet alle verwachte steden zitten in dit venster.',
    footer: 'Polder, federatieve data-uitwisseling voor Nederlandse steden.',
    api: 'De gegevens als API',
    fresh: 'vers',
    lateBadge: 'achter',
    stale: 'verouderd',
    unknown: 'onbekend',
    freshFor: 'nieuwste gegeven {age} oud',
    windowsOf: '{n} van {total} vensters',
    was: 'was {value}',
    revision: 'revisie {n}',
    missingCities: 'ontbreekt: {cities}',
    noFigures: 'Nog geen landelijke cijfers in deze periode.',
    noViews: 'De aggregator heeft geen landelijke weergaven.',
    summary: 'Vensters: {count}, van {from} tot {to}. Laatste landelijke waarde ({window}): {value}. Afgeschermd: {withheld}. Herzien: {revised}.',
    summaryEmpty: 'Nog geen vensters in deze periode.',
    announceNew: 'Nieuw venster {window}: {value}.',
    announceRevised: 'Venster {window} herzien: {value} (was {previous}).',
    announceMore: '{n} vensters bijgewerkt.',
    loadFailed: 'De cijfers konden niet worden geladen: {error}',
    lowerBound: 'ten minste {value}',
    perturbedMark: 'verstoord',
    minutesAgo: '{n} min',
    hoursAgo: '{n} uur',
    daysAgo: '{n} dagen',
    secondsAgo: '{n} s',
  },
  en: {
    skip: 'Skip to content',
    title: 'National figures',
    lede: 'Figures the cities publish together, with how fresh and complete each city is. Withheld values are never shown as 0.',
    language: 'Language',
    otherLanguage: 'Nederlands',
    otherLang: 'nl',
    controls: 'Choices',
    view: 'View',
    measure: 'Measure',
    range: 'Period',
    range6h: '6 hours',
    range24h: '24 hours',
    range7d: '7 days',
    download: 'Download',
    csv: 'CSV (all revisions)',
    connecting: 'Connecting…',
    live: 'Live: new figures appear by themselves',
    reconnecting: 'Connection lost; reconnecting…',
    pause: 'Pause live updates',
    paused: 'Paused: the figures are not updated',
    series: 'National series',
    legend: 'Legend',
    figuresCaption: 'Figures per window, newest first',
    window: 'Window',
    national: 'National',
    status: 'Status',
    map: 'Map: latest value per city',
    mapTitle: 'Schematic map of the Netherlands with the cities and their latest value',
    mapNote: 'Schematic: each circle sits where its municipality is, its area follows the value. The same values are in the Cities table.',
    cities: 'Cities',
    citiesCaption: 'Per city: latest value, freshness, completeness and supply',
    city: 'City',
    latest: 'Latest value',
    freshness: 'Freshness',
    completeness: 'Completeness',
    accepted: 'Accepted',
    rejected: 'Refused',
    late: 'Late',
    entitiesHour: 'Sensors (hour)',
    entitiesDay: 'Sensors (day)',
    notes: 'How to read the figures',
    withheld: 'withheld',
    partial: 'partly withheld',
    perturbed: 'perturbed',
    revised: 'revised',
    incomplete: 'incomplete',
    complete: 'complete',
    missing: 'missing',
    noData: 'no data',
    noteWithheld: 'A city withholds a value that rests on too few sources or is dominated by one. Such a value is left out and never shown as 0 in chart, map or table.',
    notePartial: 'The national total without the withheld parts: a lower bound.',
    notePerturbed: 'Small counts are slightly perturbed on purpose (cell-key method), so no one can single out a person.',
    noteRevised: 'A city delivered after the window closed; the figure was revised and the previous value is shown with it.',
    noteIncomplete: 'Not every expected city is in this window.',
    footer: 'Polder, federated data exchange for Dutch cities.',
    api: 'The data as an API',
    fresh: 'fresh',
    lateBadge: 'behind',
    stale: 'stale',
    unknown: 'unknown',
    freshFor: 'newest data {age} old',
    windowsOf: '{n} of {total} windows',
    was: 'was {value}',
    revision: 'revision {n}',
    missingCities: 'missing: {cities}',
    noFigures: 'No national figures in this period yet.',
    noViews: 'The aggregator has no national views.',
    summary: 'Windows: {count}, from {from} to {to}. Latest national value ({window}): {value}. Withheld: {withheld}. Revised: {revised}.',
    summaryEmpty: 'No windows in this period yet.',
    announceNew: 'New window {window}: {value}.',
    announceRevised: 'Window {window} revised: {value} (was {previous}).',
    announceMore: '{n} windows updated.',
    loadFailed: 'The figures could not be loaded: {error}',
    lowerBound: 'at least {value}',
    perturbedMark: 'perturbed',
    minutesAgo: '{n} min',
    hoursAgo: '{n} h',
    daysAgo: '{n} days',
    secondsAgo: '{n} s',
  },
};

export const lang = (() => {
  const asked = new URLSearchParams(window.location.search).get('lang');
  return asked === 'en' ? 'en' : 'nl';
})();

export const locale = lang === 'en' ? 'en-GB' : 'nl-NL';

// The string `key` with {name} placeholders filled from `params`.
export function t(key, params = {}) {
  const text = STRINGS[lang][key] ?? STRINGS.nl[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
}

// Sets <html lang>, the texts of [data-i18n] elements and [data-i18n-attr] attributes
// ("attr:key"), and the language link (to the same page in the other language).
export function applyStrings() {
  document.documentElement.lang = lang;
  document.title = `${t('title')} · Polder`;
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll('[data-i18n-attr]')) {
    const [attr, key] = el.dataset.i18nAttr.split(':');
    el.setAttribute(attr, t(key));
  }
  const toggle = document.getElementById('lang-toggle');
  const other = t('otherLang');
  toggle.textContent = t('otherLanguage');
  toggle.lang = other;
  toggle.hreflang = other;
  updateLanguageLink();
}

// Keeps the language link on the current state (view, measure, range).
export function updateLanguageLink() {
  const params = new URLSearchParams(window.location.search);
  params.set('lang', t('otherLang'));
  document.getElementById('lang-toggle').href = `?${params.toString()}`;
}
