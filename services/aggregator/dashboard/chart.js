// The national series with each city's part (uPlot, canvas). Withheld values are gaps with a
// hatched band, never 0; a revised window's national point has a ring. The chart has a text
// summary and the table below it carries the same numbers.
import uPlot from './vendor/uPlot.esm.js';
import { lang, t } from './i18n.js';
import { TIME_ZONE, formatDay, formatNumber, formatTime } from './format.js';

// Dark enough for 3:1 against white (WCAG 1.4.11), and told apart by dash as well as colour.
export const NATIONAL_COLOUR = '#1b1b1b';
export const CITY_COLOURS = ['#0068a8', '#b34700', '#00755a', '#8b3a88', '#5f5f00', '#a3143f', '#3d4fa3', '#6b4a1f'];
const DASHES = [[], [8, 4], [2, 3], [10, 3, 2, 3], [5, 5], [1, 2], [12, 6], [4, 2, 1, 2]];

const NAMES = {
  nl: {
    MMMM: ['januari', 'februari', 'maart', 'april', 'mei', 'juni', 'juli', 'augustus', 'september', 'oktober', 'november', 'december'],
    MMM: ['jan', 'feb', 'mrt', 'apr', 'mei', 'jun', 'jul', 'aug', 'sep', 'okt', 'nov', 'dec'],
    WWWW: ['zondag', 'maandag', 'dinsdag', 'woensdag', 'donderdag', 'vrijdag', 'zaterdag'],
    WWW: ['zo', 'ma', 'di', 'wo', 'do', 'vr', 'za'],
  },
  en: {
    MMMM: ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'],
    MMM: ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'],
    WWWW: ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'],
    WWW: ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'],
  },
};

export class Chart {
  constructor(container, legend) {
    this.container = container;
    this.legend = legend;
    this.plot = null;
    this.key = '';
    this.marks = { revised: new Set(), withheld: new Set(), width: 0 };
    window.addEventListener('resize', () => {
      if (this.plot) this.plot.setSize({ width: this.width(), height: this.height() });
    });
  }

  width() { return Math.max(200, this.container.clientWidth); }
  height() { return window.innerWidth < 600 ? 240 : 320; }

  // model: {cities: [names], x: [seconds], national: [value|null], parts: [[value|null]],
  // revised: [index], withheld: [index], windowSeconds}
  render(model) {
    this.marks = { revised: new Set(model.revised), withheld: new Set(model.withheld), width: model.windowSeconds };
    const data = [model.x, model.national, ...model.parts];
    const key = `${lang}|${model.cities.join(',')}`;
    if (this.plot && key === this.key) {
      this.plot.setData(data);
      return;
    }
    if (this.plot) this.plot.destroy();
    this.key = key;
    const marks = () => this.marks;
    const series = [
      {},
      { label: t('national'), stroke: NATIONAL_COLOUR, width: 3, points: { show: true, size: 6, fill: NATIONAL_COLOUR }, spanGaps: false },
      ...model.cities.map((city, i) => ({
        label: city, stroke: CITY_COLOURS[i % CITY_COLOURS.length], width: 2, dash: DASHES[i % DASHES.length],
        points: { show: true, size: 4 }, spanGaps: false,
      })),
    ];
    this.plot = new uPlot({
      width: this.width(),
      height: this.height(),
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), TIME_ZONE),
      fmtDate: (tpl) => uPlot.fmtDate(tpl, NAMES[lang]),
      legend: { show: false },
      cursor: { drag: { x: false, y: false }, points: { size: 8 } },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: [
        { stroke: NATIONAL_COLOUR, grid: { stroke: '#e3e3e3' }, ticks: { stroke: '#bbbbbb' }, values: timeTicks },
        { stroke: NATIONAL_COLOUR, grid: { stroke: '#e3e3e3' }, ticks: { stroke: '#bbbbbb' }, size: 60, values: (u, ticks) => ticks.map(formatNumber) },
      ],
      series,
      hooks: { draw: [(u) => drawMarks(u, marks())] },
    }, data, this.container);
    this.renderLegend(model.cities);
  }

  renderLegend(cities) {
    this.legend.replaceChildren();
    const item = (label, colour, dashed) => {
      const li = document.createElement('li');
      const swatch = document.createElement('span');
      swatch.className = dashed ? 'swatch dashed' : 'swatch';
      swatch.setAttribute('aria-hidden', 'true');
      swatch.style.borderColor = colour;
      li.append(swatch, document.createTextNode(label));
      this.legend.append(li);
    };
    item(t('national'), NATIONAL_COLOUR, false);
    cities.forEach((c, i) => item(c, CITY_COLOURS[i % CITY_COLOURS.length], i % DASHES.length !== 0));
    const revised = document.createElement('li');
    const ring = document.createElement('span');
    ring.className = 'ring';
    ring.setAttribute('aria-hidden', 'true');
    revised.append(ring, document.createTextNode(t('revised')));
    const band = document.createElement('li');
    const hatch = document.createElement('span');
    hatch.className = 'hatch';
    hatch.setAttribute('aria-hidden', 'true');
    band.append(hatch, document.createTextNode(t('withheld')));
    this.legend.append(revised, band);
  }
}

// The time axis in Dutch time, as the reader's language writes it: hours and minutes within two
// days, days beyond.
function timeTicks(u, splits) {
  const span = u.scales.x.max - u.scales.x.min;
  return splits.map((ts) => {
    const iso = new Date(ts * 1e3).toISOString();
    return span > 2 * 86400 ? formatDay(iso) : formatTime(iso);
  });
}

// Withheld windows as hatched bands, revised national points ringed.
function drawMarks(u, marks) {
  const { ctx } = u;
  const xs = u.data[0];
  const top = u.bbox.top;
  const height = u.bbox.height;
  ctx.save();
  ctx.beginPath();
  ctx.rect(u.bbox.left, top, u.bbox.width, height);
  ctx.clip();
  for (const i of marks.withheld) {
    const x0 = u.valToPos(xs[i], 'x', true);
    const w = Math.max(2, u.valToPos(xs[i] + marks.width, 'x', true) - x0);
    ctx.save();
    ctx.beginPath();
    ctx.rect(x0, top, w, height);
    ctx.clip();
    ctx.fillStyle = 'rgba(85, 85, 85, 0.12)';
    ctx.fillRect(x0, top, w, height);
    ctx.strokeStyle = 'rgba(85, 85, 85, 0.45)';
    ctx.lineWidth = 1;
    for (let d = -height; d < w; d += 6) {
      ctx.beginPath();
      ctx.moveTo(x0 + d, top + height);
      ctx.lineTo(x0 + d + height, top);
      ctx.stroke();
    }
    ctx.restore();
  }
  ctx.strokeStyle = '#a3143f';
  ctx.lineWidth = 2 * (window.devicePixelRatio || 1);
  for (const i of marks.revised) {
    const v = u.data[1][i];
    if (v === null || v === undefined) continue;
    ctx.beginPath();
    ctx.arc(u.valToPos(xs[i], 'x', true), u.valToPos(v, 'y', true), 7 * (window.devicePixelRatio || 1), 0, 2 * Math.PI);
    ctx.stroke();
  }
  ctx.restore();
}
