// What a plan with perfect knowledge reaches on alb benchmark's shipped
// workload: for every cell and seed, the tests of the run (with the work
// each really does) are list-scheduled earliest-finish-time over the fleet's
// slots and accelerators, in four orders, and the makespan is divided by the
// run's lower bound (the one `alb benchmark` prints). Memory is not
// modelled (the memory part of the bound is small on this workload), so
// this is a reference for the strategies, not a bound:
//   lpt         longest real work first, placement by real work
//   banded      priority bands in order, longest real work first in each
//   exp-lpt     longest expected duration first (priority within one
//               length), placed by expected durations, run with the real
//               ones: what a strategy that knows every worker's speed can
//               plan
//   exp-banded  the same in priority-band order
// Usage: bench_plan_oracle [--seeds N] [--workload FILE] (run from the
// source tree, or pass the workload file).

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "actors/simulation_run.hpp"
#include "runtime/config.hpp"
#include "runtime/makespan_bound.hpp"

namespace {

using namespace alb;

/// The order a plan takes the tests in, and what it plans with.
enum class order { lpt, banded, exp_lpt, exp_banded };

/// A worker as the plan sees it: when each slot and device is next free.
struct planned_worker {
  double speed = 1;
  std::vector<double> slot_free;
  std::vector<double> device_free;
};

/// A test as the plan sees it.
struct planned_test {
  double release = 0;
  double work = 0;
  double expected = 0;
  int devices = 0;
  int priority = 3;
};

int accelerators(const std::map<std::string, int>& m) {
  int n = 0;
  for (auto& [type, k] : m)
    n += k;
  return n;
}

/// The makespan of the earliest-finish-time list schedule of `real` in
/// order `o` (`expected` has the same tests with their expected durations).
double plan(const simulation_instance& real,
            const simulation_instance& expected, order o) {
  std::vector<planned_worker> ws;
  for (auto& w : real.workers) {
    planned_worker p;
    p.speed = w.speed;
    p.slot_free.assign(static_cast<size_t>(w.max_concurrent_tests > 0
                                             ? w.max_concurrent_tests
                                             : std::max(1, w.cpu_cores)),
                       0.0);
    p.device_free.assign(
      static_cast<size_t>(accelerators(w.available_accelerators)), 0.0);
    ws.push_back(std::move(p));
  }
  std::vector<planned_test> ts;
  for (size_t i = 0; i < real.tests.size(); ++i) {
    auto& [at, t] = real.tests[i];
    ts.push_back({at, t.expected_duration,
                  expected.tests[i].second.expected_duration,
                  accelerators(t.required_accelerators), t.priority});
  }
  bool by_expected = o == order::exp_lpt || o == order::exp_banded;
  bool banded = o == order::banded || o == order::exp_banded;
  std::stable_sort(ts.begin(), ts.end(), [&](auto& a, auto& b) {
    if (banded && a.priority != b.priority)
      return a.priority < b.priority;
    if (by_expected) {
      if (a.expected != b.expected)
        return a.expected > b.expected;
      return a.priority < b.priority;
    }
    return a.work > b.work;
  });
  double makespan = 0;
  for (auto& t : ts) {
    auto planned = by_expected ? t.expected : t.work;
    double best_end = 0;
    double best_start = 0;
    size_t best_w = ws.size();
    size_t best_s = 0;
    for (size_t i = 0; i < ws.size(); ++i) {
      auto& w = ws[i];
      if (t.devices > static_cast<int>(w.device_free.size()))
        continue;
      auto s = static_cast<size_t>(
        std::min_element(w.slot_free.begin(), w.slot_free.end())
        - w.slot_free.begin());
      auto start = std::max(t.release, w.slot_free[s]);
      if (t.devices > 0) {
        auto d = w.device_free;
        std::sort(d.begin(), d.end());
        start = std::max(start, d[static_cast<size_t>(t.devices - 1)]);
      }
      auto end = start + planned / w.speed;
      if (best_w == ws.size() || end < best_end - 1e-12) {
        best_end = end;
        best_start = start;
        best_w = i;
        best_s = s;
      }
    }
    if (best_w == ws.size())
      continue; // fits nowhere (the workload always has a GPU worker)
    auto& w = ws[best_w];
    // Planned with `planned`, run with the real work.
    auto end = best_start + t.work / w.speed;
    w.slot_free[best_s] = end;
    if (t.devices > 0) {
      std::sort(w.device_free.begin(), w.device_free.end());
      for (int k = 0; k < t.devices; ++k)
        w.device_free[static_cast<size_t>(k)] = end;
    }
    makespan = std::max(makespan, end);
  }
  return makespan;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"Earliest-finish plans with perfect knowledge on the "
               "benchmark workload, over its lower bound"};
  int seeds = 10;
  std::string workload = "configs/benchmark_workload.toml";
  std::string scenarios = "configs/scenarios.toml";
  app.add_option("--seeds", seeds, "Seeds 1..N per cell")
    ->check(CLI::Range(1, 1000));
  app.add_option("--workload", workload, "The workload TOML");
  app.add_option("--scenarios", scenarios, "The base configuration TOML");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "bench_plan_oracle: error: %s\n", e.what());
    return 2;
  }
  config cfg;
  try {
    cfg = load_config(scenarios);
    merge_config_file(cfg, workload);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_plan_oracle: error: %s\n", e.what());
    return 2;
  }
  std::printf("plan makespan / lower bound, median/worst over seeds 1-%d\n"
              "workers tests        lpt     banded    exp-lpt exp-banded\n",
              seeds);
  const std::vector<std::pair<int, uint64_t>> grid{
    {5, 100},   {5, 500},  {5, 1000}, {10, 100},  {10, 500},
    {10, 1000}, {20, 100}, {20, 500}, {20, 1000}, {50, 100}};
  const order orders[]
    = {order::lpt, order::banded, order::exp_lpt, order::exp_banded};
  for (auto [w, n] : grid) {
    std::vector<std::vector<double>> ratios(4);
    for (int seed = 1; seed <= seeds; ++seed) {
      simulation_options o;
      o.type = "benchmark";
      o.workers = w;
      o.tests = n;
      o.duration = 0;
      o.seed = static_cast<uint64_t>(seed);
      o.deterministic = true;
      o.workers_profile = cfg.worker_profiles.at("benchmark");
      o.tests_profile = cfg.test_profiles.at("benchmark");
      o.scheduler = cfg.scheduler;
      auto real = realized_instance(o);
      auto drawn = draw_instance(o);
      auto bound = bound_of(real.workers, real.tests, 1.0).total;
      for (size_t k = 0; k < 4; ++k)
        ratios[k].push_back(plan(real, drawn, orders[k]) / bound);
    }
    std::printf("%7d %5llu", w, static_cast<unsigned long long>(n));
    for (auto& r : ratios)
      std::printf("  %4.2f/%4.2f", median(r),
                  *std::max_element(r.begin(), r.end()));
    std::printf("\n");
  }
}
