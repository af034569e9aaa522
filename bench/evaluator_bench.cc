// In-process feature evaluation: one user against a realistic 20-flag payload
// (bench/evaluator_payload.json: force rules with conditions, percentage rollouts, a range
// rollout, a prerequisite gate, a saved group, a regex, experiment rules with weights,
// coverage, a namespace and targeting) for the 1,000 users of bench/evaluator_users.json.
// Goal: < 1 us per flag. CompiledFeatures::compile runs once, outside the timed loops.
//
// Baselines in the same run:
//  - BM_CompileEveryCall: compile the payload on every evaluation (what interpreting the JSON
//    document per request costs);
//  - the official GrowthBook JS SDK on node (bench/evaluator_bench_js.mjs, launched by main()
//    after the benchmarks) evaluating the same payload for the same users. Before timing,
//    main() also checks that both give the same source, rule, experiment, variation and value
//    for every (user, flag) pair.
// Sizes: the 20-flag payload, and 10x / 50x copies of it (200 / 1,000 flags) to show the
// per-flag cost does not depend on the payload size.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "assign/evaluator.h"

namespace {

using fulcrum::assign::CompiledFeatures;
using fulcrum::assign::EvalContext;
using fulcrum::assign::FeatureResult;
using json = nlohmann::json;

std::string source_path(const std::string& relative) {
  return std::string(FULCRUM_SOURCE_DIR) + "/" + relative;
}

json read_json(const std::string& relative) {
  std::ifstream in(source_path(relative));
  return json::parse(in);
}

const json& payload() {
  static const json p = read_json("bench/evaluator_payload.json");
  return p;
}
const json& users() {
  static const json u = read_json("bench/evaluator_users.json");
  return u;
}

// `copies` copies of the payload's features, keys suffixed "#i" for i > 0.
json features_times(int copies) {
  json out = json::object();
  for (int i = 0; i < copies; ++i) {
    for (auto it = payload()["features"].begin(); it != payload()["features"].end(); ++it) {
      out[i == 0 ? it.key() : it.key() + "#" + std::to_string(i)] = it.value();
    }
  }
  return out;
}

std::vector<std::string> keys_of(const json& features) {
  std::vector<std::string> keys;
  for (auto it = features.begin(); it != features.end(); ++it) keys.push_back(it.key());
  return keys;
}

void BM_EvaluatePayload(benchmark::State& state) {
  const json features = features_times(static_cast<int>(state.range(0)));
  const auto compiled = CompiledFeatures::compile(features).value();
  const auto keys = keys_of(features);
  const json& saved_groups = payload()["savedGroups"];
  const json& all_users = users();
  std::size_t u = 0;
  for (auto _ : state) {
    EvalContext ctx;
    ctx.attributes = &all_users[u++ % all_users.size()];
    ctx.saved_groups = &saved_groups;
    for (const auto& key : keys) benchmark::DoNotOptimize(compiled.evaluate(key, ctx));
  }
  const auto flags = static_cast<double>(state.iterations() * keys.size());
  state.counters["per_flag"] =
      benchmark::Counter(flags, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["flags"] = static_cast<double>(keys.size());
}
BENCHMARK(BM_EvaluatePayload)->Arg(1)->Arg(10)->Arg(50);

// One flag of the payload (argument: its index in sorted key order) for every user: the
// cost of each kind of rule.
void BM_EvaluateFlag(benchmark::State& state) {
  const json& features = payload()["features"];
  const auto compiled = CompiledFeatures::compile(features).value();
  const std::string key = compiled.keys()[static_cast<std::size_t>(state.range(0))];
  state.SetLabel(key);
  const json& saved_groups = payload()["savedGroups"];
  const json& all_users = users();
  std::size_t u = 0;
  for (auto _ : state) {
    EvalContext ctx;
    ctx.attributes = &all_users[u++ % all_users.size()];
    ctx.saved_groups = &saved_groups;
    benchmark::DoNotOptimize(compiled.evaluate(key, ctx));
  }
}
BENCHMARK(BM_EvaluateFlag)->DenseRange(0, 19);

void BM_CompileEveryCall(benchmark::State& state) {
  const json& features = payload()["features"];
  const auto keys = keys_of(features);
  const json& saved_groups = payload()["savedGroups"];
  const json& all_users = users();
  std::size_t u = 0;
  for (auto _ : state) {
    EvalContext ctx;
    ctx.attributes = &all_users[u++ % all_users.size()];
    ctx.saved_groups = &saved_groups;
    for (const auto& key : keys) {
      const auto compiled = CompiledFeatures::compile(json{{key, features[key]}}).value();
      benchmark::DoNotOptimize(compiled.evaluate(key, ctx));
    }
  }
  const auto flags = static_cast<double>(state.iterations() * keys.size());
  state.counters["per_flag"] =
      benchmark::Counter(flags, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_CompileEveryCall);

std::string result_line(const FeatureResult& r) {
  std::string line = r.source + "|" + r.rule_id + "|";
  if (r.experiment_result)
    line += *r.experiment_key + "|" + r.experiment_result->key;
  else
    line += "|";
  return line + "|" + r.value.dump();
}

// Evaluates every (user, flag) pair the way the node script does and returns the lines.
std::vector<std::string> cpp_results(const CompiledFeatures& compiled) {
  std::vector<std::string> keys = compiled.keys();  // sorted, as the script sorts them
  std::vector<std::string> lines;
  for (const auto& user : users()) {
    EvalContext ctx;
    ctx.attributes = &user;
    ctx.saved_groups = &payload()["savedGroups"];
    for (const auto& key : keys) lines.push_back(result_line(compiled.evaluate(key, ctx)));
  }
  return lines;
}

double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

struct PerFlag {
  double wall_ns = 0;
  double cpu_ns = 0;
};

PerFlag cpp_ns_per_flag(const CompiledFeatures& compiled, double seconds) {
  const auto keys = compiled.keys();
  const json& saved_groups = payload()["savedGroups"];
  std::size_t evaluations = 0;
  bool sink = false;
  const double cpu_start = process_cpu_seconds();
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  while (elapsed < seconds) {
    for (const auto& user : users()) {
      EvalContext ctx;
      ctx.attributes = &user;
      ctx.saved_groups = &saved_groups;
      for (const auto& key : keys) sink ^= compiled.evaluate(key, ctx).on;
    }
    evaluations += users().size() * keys.size();
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  benchmark::DoNotOptimize(sink);
  const double cpu = process_cpu_seconds() - cpu_start;
  return {elapsed * 1e9 / static_cast<double>(evaluations),
          cpu * 1e9 / static_cast<double>(evaluations)};
}

// Runs the JS SDK script; returns its JSON line, or null when node or the SDK is missing.
json run_js(const std::string& extra_args) {
  const std::string command =
      "node " + source_path("bench/evaluator_bench_js.mjs") + " " + extra_args + " 2>/dev/null";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return nullptr;
  std::string out;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, pipe) != nullptr) out += buf;
  if (pclose(pipe) != 0 || out.empty()) return nullptr;
  return json::parse(out, nullptr, false);
}

// Same payload, same users, same run: C++ vs the GrowthBook JS SDK, after checking that both
// agree on every (user, flag) pair. Returns non-zero on disagreement.
int compare_with_js_sdk() {
  if (std::getenv("FULCRUM_BENCH_SKIP_JS") != nullptr) return 0;
  const auto compiled = CompiledFeatures::compile(payload()["features"]).value();
  const std::string results_path = "/tmp/fulcrum_evaluator_bench_js_results.txt";
  const json js = run_js("--seconds 2 --results " + results_path);
  if (js.is_null() || js.is_discarded()) {
    std::cout << "\nGrowthBook JS SDK baseline skipped: needs node and `cd tests/sdk && npm ci`\n";
    return 0;
  }
  std::ifstream in(results_path);
  std::vector<std::string> js_lines;
  for (std::string line; std::getline(in, line);) js_lines.push_back(line);
  const auto ours = cpp_results(compiled);
  std::size_t mismatches = 0;
  for (std::size_t i = 0; i < ours.size(); ++i) {
    if (i >= js_lines.size() || ours[i] != js_lines[i]) {
      if (++mismatches <= 5) {
        std::cout << "MISMATCH user " << i / compiled.keys().size() << ": ours " << ours[i]
                  << " | sdk " << (i < js_lines.size() ? js_lines[i] : "<missing>") << "\n";
      }
    }
  }
  std::cout << "\nagreement with " << js["sdk"].get<std::string>() << ": "
            << ours.size() - mismatches << " of " << ours.size() << " (user, flag) results equal"
            << (js_lines.size() == ours.size() ? "" : " (line counts differ)") << "\n";
  const PerFlag timing = cpp_ns_per_flag(compiled, 2.0);
  const double js_ns = js["ns_per_flag"].get<double>();
  const double js_cpu_ns = js["cpu_ns_per_flag"].get<double>();
  std::printf(
      "per flag, 20-flag payload, 1,000 users (%s):\n"
      "  wall clock: C++ evaluator %.0f ns, GrowthBook JS SDK %.0f ns, SDK / C++ = %.1fx\n"
      "  CPU time:   C++ evaluator %.0f ns, GrowthBook JS SDK %.0f ns, SDK / C++ = %.1fx\n",
      js["sdk"].get<std::string>().c_str(), timing.wall_ns, js_ns, js_ns / timing.wall_ns,
      timing.cpu_ns, js_cpu_ns, js_cpu_ns / timing.cpu_ns);
  return mismatches == 0 && js_lines.size() == ours.size() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return compare_with_js_sdk();
}
