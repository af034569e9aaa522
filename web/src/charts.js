// Charts: time series through uPlot (vendored from npm into web/vendor/uplot) and a small SVG
// "forest plot" for confidence intervals, where each row is one variant's effect versus
// control with its interval and a reference line at zero (no effect).
import uPlot from '../vendor/uplot/uPlot.esm.js';
import { h, fmt, isNum } from './ui.js';

export const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2',
                        '#ca8a04', '#db2777'];

const SVG = 'http://www.w3.org/2000/svg';
function s(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

// rows: [{label, estimate, lower, upper, significant}]; values are effects (differences),
// shown as percentage points when options.percent.
export function intervalChart(rows, options = {}) {
  const usable = rows.filter((r) => isNum(r.lower) && isNum(r.upper) && isNum(r.estimate));
  const figure = h('figure', { class: 'ci-chart', 'data-chart': 'confidence-interval' });
  if (!usable.length) {
    figure.append(h('p', { class: 'muted' }, 'No confidence interval yet (not enough data).'));
    return figure;
  }
  // Compact charts (narrow cards) use a smaller canvas so the text keeps its size.
  const width = options.compact ? 340 : 560, left = options.compact ? 50 : 130;
  const rowHeight = 34, right = 24, top = 12, axis = 28;
  const height = top + usable.length * rowHeight + axis;
  let lo = Math.min(0, ...usable.map((r) => r.lower));
  let hi = Math.max(0, ...usable.map((r) => r.upper));
  const pad = (hi - lo) * 0.08 || 0.01;
  lo -= pad; hi += pad;
  const x = (v) => left + ((v - lo) / (hi - lo)) * (width - left - right);
  const format = options.format || ((v) => (options.percent ? `${(v * 100).toFixed(2)} pp` : fmt.number(v, 3)));
  const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, width: '100%', role: 'img',
                         'aria-label': options.title || 'confidence intervals' });
  // axis ticks
  const ticks = options.compact ? 4 : 5;
  for (let i = 0; i <= ticks; i += options.compact ? 2 : 1) {
    const v = lo + ((hi - lo) * i) / ticks;
    const tx = x(v);
    svg.append(s('line', { x1: tx, x2: tx, y1: top, y2: height - axis, class: 'grid' }));
    svg.append(s('text', { x: tx, y: height - axis + 16, 'text-anchor': 'middle', class: 'tick' },
                 format(v)));
  }
  svg.append(s('line', { x1: x(0), x2: x(0), y1: top - 4, y2: height - axis, class: 'zero' }));
  usable.forEach((r, i) => {
    const y = top + i * rowHeight + rowHeight / 2;
    const color = r.significant ? (r.estimate >= 0 === (options.higherIsBetter !== false)
      ? '#16a34a' : '#dc2626') : '#64748b';
    svg.append(s('text', { x: left - 10, y: y + 4, 'text-anchor': 'end', class: 'row-label' },
                 r.label));
    svg.append(s('line', { x1: x(r.lower), x2: x(r.upper), y1: y, y2: y, stroke: color,
                           'stroke-width': 3, 'stroke-linecap': 'round' }));
    for (const end of [r.lower, r.upper]) {
      svg.append(s('line', { x1: x(end), x2: x(end), y1: y - 7, y2: y + 7, stroke: color,
                             'stroke-width': 2 }));
    }
    const dot = s('circle', { cx: x(r.estimate), cy: y, r: 5, fill: color });
    dot.append(s('title', {}, `${r.label}: ${format(r.estimate)} [${format(r.lower)}, ${format(r.upper)}]`));
    svg.append(dot);
  });
  figure.append(svg);
  if (options.caption) figure.append(h('figcaption', {}, options.caption));
  return figure;
}

// A line chart, by default over time (x in unix seconds; options.time = false with
// options.xFormat for other x values); series: [{label, values, color}]. Returns a
// container; the plot is built once the container has a width and follows its resizes.
export function lineChart(x, series, options = {}) {
  const box = h('div', { class: 'line-chart', 'data-chart': options.name || 'line' });
  if (!x.length || !series.length) {
    box.append(h('p', { class: 'muted' }, options.emptyText || 'No data points yet.'));
    return box;
  }
  const data = [x, ...series.map((ser) => ser.values.map((v) => (isNum(v) ? v : null)))];
  let plot = null;
  const height = options.height || 220;
  const valueFormat = options.percent ? (v) => (v == null ? '—' : `${(v * 100).toFixed(2)}%`)
                                      : (v) => (v == null ? '—' : fmt.number(v, 2));
  const build = (width) => {
    plot = new uPlot({
      width, height,
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: options.time !== false } },
      axes: [
        { stroke: '#475569', grid: { stroke: '#e2e8f0' },
          ...(options.xFormat ? { values: (u, splits) => splits.map(options.xFormat) } : {}),
          ...(options.time === false ? { incrs: [1, 2, 4, 8, 13, 26, 52], space: 36 } : {}),
          // Daily points: ticks on whole days only.
          ...(options.daily ? { incrs: [1, 2, 7, 14, 30, 91].map((d) => d * 86400), space: 50 } : {}) },
        { stroke: '#475569', grid: { stroke: '#e2e8f0' }, size: 60,
          values: (u, splits) => splits.map((v) => (options.percent ? `${(v * 100).toFixed(1)}%`
                                                                    : fmt.number(v, 1))) },
      ],
      series: [
        { label: options.xLabel || 'Date',
          value: (u, v) => (v == null ? '—' : options.xFormat ? options.xFormat(v) : fmt.date(v * 1000)) },
        ...series.map((ser, i) => ({
          label: ser.label, stroke: ser.color || PALETTE[i % PALETTE.length], width: 2,
          points: { show: x.length <= 40 }, value: (u, v) => valueFormat(v),
        })),
      ],
    }, data, box);
  };
  const observer = new ResizeObserver(() => {
    const width = Math.floor(box.clientWidth);
    if (width <= 0) return;
    if (!plot) build(width);
    else if (Math.abs(plot.width - width) > 2) plot.setSize({ width, height });
  });
  observer.observe(box);
  return box;
}

// A tiny inline trend line (SVG) for tables: values in order, oldest first.
export function sparkline(values, options = {}) {
  const nums = values.filter(isNum);
  const width = options.width || 120, height = options.height || 28;
  const svg = s('svg', { width, height, viewBox: `0 0 ${width} ${height}`, class: 'sparkline',
                         role: 'img', 'aria-label': 'usage trend' });
  if (nums.length < 2) return svg;
  const lo = Math.min(...nums), hi = Math.max(...nums);
  const span = hi - lo || 1;
  const points = values.map((v, i) => [
    (i / (values.length - 1)) * (width - 4) + 2,
    height - 2 - ((isNum(v) ? v - lo : 0) / span) * (height - 4),
  ]);
  const color = nums[nums.length - 1] < nums[0] ? '#dc2626' : '#16a34a';
  svg.append(s('polyline', { points: points.map((p) => p.join(',')).join(' '), fill: 'none',
                             stroke: color, 'stroke-width': 1.5 }));
  return svg;
}
