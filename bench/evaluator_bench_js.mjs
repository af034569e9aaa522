// The official GrowthBook JS SDK (tests/sdk/node_modules, version pinned in tests/sdk/package.json)
// evaluating bench/evaluator_payload.json for the users in bench/evaluator_users.json: the
// baseline of bench/evaluator_bench.cc, which runs this script in the same run.
//   node bench/evaluator_bench_js.mjs [--seconds S] [--results FILE]
// Prints one JSON line: {"sdk", "ns_per_flag" (wall clock), "cpu_ns_per_flag" (process CPU
// time, robust when the machine is shared), "flag_evaluations"}. With --results, writes one
// line per (user, flag): source|ruleId|experiment key|variation key|JSON value, for the C++
// side to compare result by result.
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";

const here = new URL(".", import.meta.url);
const require = createRequire(new URL("../tests/sdk/package.json", here));
const { GrowthBookClient } = require("@growthbook/growthbook");
const sdkVersion = require("@growthbook/growthbook/package.json").version;

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const seconds = Number(option("--seconds", "1.5"));
const resultsPath = option("--results", null);

const payload = JSON.parse(readFileSync(new URL("evaluator_payload.json", here)));
const users = JSON.parse(readFileSync(new URL("evaluator_users.json", here)));
const keys = Object.keys(payload.features).sort();

// The SDK's server-side multi-user client: one payload, a user context per evaluation.
const client = new GrowthBookClient().initSync({ payload });
const contexts = users.map((attributes) => ({ attributes }));

if (resultsPath) {
  const lines = [];
  for (const ctx of contexts) {
    for (const key of keys) {
      const r = client.evalFeature(key, ctx);
      const e = r.experimentResult;
      lines.push([r.source, r.ruleId, e ? r.experiment.key : "", e ? e.key : "",
                  JSON.stringify(r.value)].join("|"));
    }
  }
  writeFileSync(resultsPath, lines.join("\n") + "\n");
}

let sink = 0;
const pass = () => {
  for (const ctx of contexts) {
    for (const key of keys) {
      if (client.evalFeature(key, ctx).on) sink++;
    }
  }
};
for (let i = 0; i < 5; i++) pass();  // warm up the JIT

let evaluations = 0;
const cpuStart = process.cpuUsage();
const start = process.hrtime.bigint();
const budget = BigInt(Math.round(seconds * 1e9));
let elapsed = 0n;
while (elapsed < budget) {
  pass();
  evaluations += contexts.length * keys.length;
  elapsed = process.hrtime.bigint() - start;
}
const cpu = process.cpuUsage(cpuStart);  // microseconds, all of node's threads
console.log(JSON.stringify({
  sdk: `@growthbook/growthbook ${sdkVersion}`,
  ns_per_flag: Number(elapsed) / evaluations,
  cpu_ns_per_flag: ((cpu.user + cpu.system) * 1000) / evaluations,
  flag_evaluations: evaluations,
  on_count: sink,
}));
