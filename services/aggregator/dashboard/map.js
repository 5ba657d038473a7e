// A schematic map of the Netherlands (no tiles: a rough outline and the municipalities' places
// from a small built-in table), each city a labelled circle whose area follows its latest value.
// Withheld is a hatched circle labelled as such, never 0; a city without a place is listed under
// the outline.
import { t } from './i18n.js';
import { describe, formatNumber } from './format.js';
import { CITY_COLOURS } from './chart.js';

const SVG = 'http://www.w3.org/2000/svg';

// Longitude, latitude of the municipalities' centres (by peer id).
const PLACES = {
  groningen: [6.566, 53.219], amersfoort: [5.387, 52.156], enschede: [6.894, 52.221],
  amsterdam: [4.900, 52.373], rotterdam: [4.479, 51.922], 'den-haag': [4.300, 52.070],
  utrecht: [5.121, 52.091], eindhoven: [5.478, 51.441], helmond: [5.661, 51.481],
  ede: [5.666, 52.040], wageningen: [5.663, 51.970], zwolle: [6.091, 52.516],
  nijmegen: [5.852, 51.842], arnhem: [5.911, 51.985], maastricht: [5.690, 50.851],
  tilburg: [5.091, 51.560], breda: [4.776, 51.589], leeuwarden: [5.799, 53.201],
  almere: [5.215, 52.371], apeldoorn: [5.969, 52.211], haarlem: [4.646, 52.387],
  zaanstad: [4.826, 52.455], 'den-bosch': [5.304, 51.690], leiden: [4.497, 52.160],
  dordrecht: [4.690, 51.813], emmen: [6.906, 52.785], assen: [6.562, 52.993],
  deventer: [6.163, 52.255], hengelo: [6.793, 52.266], venlo: [6.172, 51.370],
  middelburg: [3.614, 51.499], lelystad: [5.471, 52.518],
};

// A rough outline of the mainland (longitude, latitude), clockwise from Zeeland's coast.
const OUTLINE = [
  [3.37, 51.37], [3.56, 51.29], [3.86, 51.21], [4.24, 51.37], [4.39, 51.45], [4.55, 51.43],
  [4.76, 51.50], [5.03, 51.48], [5.10, 51.43], [5.24, 51.31], [5.48, 51.30], [5.64, 51.24],
  [5.85, 51.15], [5.78, 51.05], [5.64, 50.85], [5.70, 50.76], [6.02, 50.75], [6.02, 50.98],
  [6.09, 51.13], [6.22, 51.36], [6.22, 51.51], [6.00, 51.73], [5.95, 51.80], [6.40, 51.83],
  [6.72, 51.90], [6.83, 51.97], [6.76, 52.12], [7.05, 52.23], [7.07, 52.40], [6.70, 52.48],
  [6.76, 52.65], [7.07, 52.64], [7.21, 53.00], [7.21, 53.24], [6.99, 53.33], [6.74, 53.47],
  [6.17, 53.41], [5.60, 53.30], [5.41, 53.17], [5.18, 53.00], [4.99, 52.93], [4.76, 52.96],
  [4.63, 52.72], [4.55, 52.46], [4.43, 52.26], [4.12, 51.98], [3.90, 51.75], [3.69, 51.71],
  [3.45, 51.54], [3.37, 51.37],
];

function project([lon, lat]) {
  return [(lon - 3.2) * 61.6 + 5, (53.6 - lat) * 100 + 5];
}

function el(name, attrs, text) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

export function renderMap(svg, cities, latest) {
  svg.querySelector('#map-outline').setAttribute('d', `M${OUTLINE.map((p) => project(p).join(',')).join('L')}Z`);
  svg.querySelector('#map-title').textContent = t('mapTitle');
  const group = svg.querySelector('#map-cities');
  group.replaceChildren();
  const values = cities.map((c) => describe(latest.get(c) ? latest.get(c).measure : null, latest.get(c) ? 'none' : 'missing'));
  const max = Math.max(1, ...values.filter((v) => v.value !== null).map((v) => v.value));
  const described = [];
  let unplaced = 0;
  cities.forEach((city, i) => {
    const v = values[i];
    let [x, y] = PLACES[city] ? project(PLACES[city]) : [20 + 60 * unplaced, 300];
    if (!PLACES[city]) unplaced += 1;
    const r = v.value !== null ? 5 + 15 * Math.sqrt(v.value / max) : 9;
    const g = el('g', { 'data-city': city, 'data-kind': v.kind });
    if (v.value === null) {
      g.append(el('circle', { cx: x, cy: y, r, fill: 'url(#hatch)', stroke: '#555555', 'stroke-width': 1.5, 'stroke-dasharray': '3 2' }));
    } else {
      g.append(el('circle', { cx: x, cy: y, r, fill: CITY_COLOURS[i % CITY_COLOURS.length], 'fill-opacity': 0.85, stroke: '#ffffff', 'stroke-width': 1.5 }));
    }
    const label = v.value !== null ? formatNumber(v.value) : v.text;
    // Name and value under the circle, kept inside the drawing at its edges.
    const lx = Math.min(250, Math.max(20, x));
    g.append(el('text', { x: lx, y: y + r + 10, 'text-anchor': 'middle', class: 'map-city' }, city));
    g.append(el('text', { x: lx, y: y + r + 20, 'text-anchor': 'middle', class: 'map-value' }, label));
    group.append(g);
    described.push(`${city}: ${v.text}`);
  });
  svg.querySelector('#map-desc').textContent = described.join('; ');
}
