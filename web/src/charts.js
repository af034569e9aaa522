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

// Horizontal bars (SVG): rows [{label, value}], each bar labelled with options.format(value).
// Every bar carries data-label / data-value so tests can read the figures drawn.
export function barChart(rows, options = {}) {
  const figure = h('figure', { class: 'bar-chart', 'data-chart': options.name || 'bars' });
  if (!rows.length) {
    figure.append(h('p', { class: 'muted' }, options.emptyText || 'Nothing to show yet.'));
    return figure;
  }
  const format = options.format || ((v) => fmt.number(v));
  const width = 560, left = 170, right = 80, rowHeight = 26, top = 6;
  const height = top * 2 + rows.length * rowHeight;
  const max = Math.max(options.max ?? 0, ...rows.map((r) => (isNum(r.value) ? r.value : 0))) || 1;
  const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, width: '100%', role: 'img',
                         'aria-label': options.title || 'bar chart' });
  rows.forEach((r, i) => {
    const y = top + i * rowHeight;
    const length = ((isNum(r.value) ? r.value : 0) / max) * (width - left - right);
    svg.append(s('text', { x: left - 8, y: y + rowHeight / 2 + 4, 'text-anchor': 'end',
                           class: 'row-label' }, r.label));
    const bar = s('rect', { x: left, y: y + 4, width: Math.max(1, length), height: rowHeight - 8,
                            rx: 3, fill: r.color || PALETTE[i % PALETTE.length],
                            'data-label': r.label, 'data-value': r.value });
    bar.append(s('title', {}, `${r.label}: ${format(r.value)}`));
    svg.append(bar);
    svg.append(s('text', { x: left + length + 6, y: y + rowHeight / 2 + 4, class: 'tick' },
                 format(r.value)));
  });
  figure.append(svg);
  if (options.caption) figure.append(h('figcaption', {}, options.caption));
  return figure;
}

// A histogram (SVG): bins [{from, to, count}] of equal width, x labelled with options.format.
export function histogram(bins, options = {}) {
  const figure = h('figure', { class: 'histogram', 'data-chart': options.name || 'histogram' });
  if (!bins.length) {
    figure.append(h('p', { class: 'muted' }, 'Nothing to show yet.'));
    return figure;
  }
  const format = options.format || ((v) => fmt.number(v));
  const width = 560, height = 220, left = 56, right = 12, top = 10, bottom = 30;
  const max = Math.max(...bins.map((b) => b.count)) || 1;
  const barWidth = (width - left - right) / bins.length;
  const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, width: '100%', role: 'img',
                         'aria-label': options.title || 'histogram' });
  for (let i = 0; i <= 4; i += 1) {
    const v = (max * i) / 4;
    const y = height - bottom - (v / max) * (height - top - bottom);
    svg.append(s('line', { x1: left, x2: width - right, y1: y, y2: y, class: 'grid' }));
    svg.append(s('text', { x: left - 6, y: y + 4, 'text-anchor': 'end', class: 'tick' },
                 fmt.number(Math.round(v))));
  }
  bins.forEach((b, i) => {
    const barHeight = (b.count / max) * (height - top - bottom);
    const bar = s('rect', { x: left + i * barWidth + 1, y: height - bottom - barHeight,
                            width: Math.max(1, barWidth - 2), height: barHeight, fill: PALETTE[0],
                            'data-from': b.from, 'data-to': b.to, 'data-value': b.count });
    bar.append(s('title', {}, `${format(b.from)}–${format(b.to)}: ${fmt.number(b.count)}`));
    svg.append(bar);
    if (i % Math.ceil(bins.length / 5) === 0) {
      svg.append(s('text', { x: left + i * barWidth, y: height - bottom + 16, class: 'tick' },
                   format(b.from)));
    }
  });
  figure.append(svg);
  if (options.caption) figure.append(h('figcaption', {}, options.caption));
  return figure;
}

// A calibration curve (SVG): points [{predicted, observed, n}] against the diagonal
// (perfect calibration), both axes 0..options.max (default the largest value, at least 0.1).
export function calibrationChart(points, options = {}) {
  const figure = h('figure', { class: 'calibration-chart', 'data-chart': options.name || 'calibration' });
  const usable = points.filter((p) => isNum(p.predicted) && isNum(p.observed) && p.n > 0);
  if (!usable.length) {
    figure.append(h('p', { class: 'muted' }, 'No measured outcomes yet.'));
    return figure;
  }
  const size = 300, pad = 44;
  const max = options.max ?? Math.min(1, Math.max(0.1, ...usable.map((p) => Math.max(p.predicted, p.observed))) * 1.1);
  const x = (v) => pad + (v / max) * (size - pad - 10);
  const y = (v) => size - pad - (v / max) * (size - pad - 10);
  const svg = s('svg', { viewBox: `0 0 ${size} ${size}`, width: '100%', role: 'img',
                         'aria-label': options.title || 'calibration curve', class: 'square' });
  for (let i = 0; i <= 4; i += 1) {
    const v = (max * i) / 4;
    svg.append(s('line', { x1: x(0), x2: x(max), y1: y(v), y2: y(v), class: 'grid' }));
    svg.append(s('text', { x: x(0) - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'tick' }, fmt.percent(v, 0)));
    svg.append(s('text', { x: x(v), y: y(0) + 16, 'text-anchor': 'middle', class: 'tick' }, fmt.percent(v, 0)));
  }
  svg.append(s('line', { x1: x(0), y1: y(0), x2: x(max), y2: y(max), class: 'zero' }));
  const path = usable.map((p, i) => `${i ? 'L' : 'M'}${x(p.predicted)},${y(p.observed)}`).join(' ');
  svg.append(s('path', { d: path, fill: 'none', stroke: PALETTE[0], 'stroke-width': 2 }));
  for (const p of usable) {
    const dot = s('circle', { cx: x(p.predicted), cy: y(p.observed), r: 4, fill: PALETTE[0],
                              'data-predicted': p.predicted, 'data-observed': p.observed,
                              'data-n': p.n });
    dot.append(s('title', {}, `predicted ${fmt.percent(p.predicted)}, observed ${fmt.percent(p.observed)} (n = ${fmt.number(p.n)})`));
    svg.append(dot);
  }
  svg.append(s('text', { x: size / 2, y: size - 6, 'text-anchor': 'middle', class: 'tick' }, options.xLabel || 'predicted'));
  svg.append(s('text', { x: 12, y: size / 2, 'text-anchor': 'middle', class: 'tick',
                         transform: `rotate(-90 12 ${size / 2})` }, options.yLabel || 'observed'));
  figure.append(svg);
  if (options.caption) figure.append(h('figcaption', {}, options.caption));
  return figure;
}
