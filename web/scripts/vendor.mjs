// Copies the chart library out of node_modules into web/vendor/, so the dashboard is served
// entirely by `fulcrum serve` (offline, no CDN). The copies are committed; run
// `npm run vendor` after changing the uplot version in package.json.
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const web = join(dirname(fileURLToPath(import.meta.url)), '..');
const files = [
  ['node_modules/uplot/dist/uPlot.esm.js', 'vendor/uplot/uPlot.esm.js'],
  ['node_modules/uplot/dist/uPlot.min.css', 'vendor/uplot/uPlot.min.css'],
  ['node_modules/uplot/LICENSE', 'vendor/uplot/LICENSE.txt'],
];
for (const [from, to] of files) {
  mkdirSync(dirname(join(web, to)), { recursive: true });
  copyFileSync(join(web, from), join(web, to));
  console.log(`${from} -> ${to}`);
}
