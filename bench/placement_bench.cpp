// One placement decision per strategy on a loaded cluster of 100 to 100,000
// workers: `pick` alone, the part of the scheduler's per-test work that
// depends on the cluster's size.
//
//     bench_placement_bench --benchmark_repetitions=5
//                           --benchmark_report_aggregates_only=true

#include <benchmark/benchmark.h>

#include "runtime/cluster_state.hpp"
#include "runtime/rng.hpp"
#include "runtime/strategy.hpp"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace {

using namespace alb;

/// A cluster of `n` mixed workers, half of its test slots taken, shared by
/// every benchmark of that size.
cluster_state& loaded_cluster(int n) {
  static std::map<int, std::unique_ptr<cluster_state>> clusters;
  auto& c = clusters[n];
  if (c)
    return *c;
  scheduler_config cfg;
  cfg.strategy = "least_loaded";
  cfg.prefetch = 0;
  c = std::make_unique<cluster_state>(cfg);
  rng r{42};
  const std::vector<double> memory{16, 32, 64};
  const std::vector<double> speed{0.5, 1, 2, 4};
  for (int i = 0; i < n; ++i) {
    worker_capabilities w;
    w.worker_id = "w-" + std::to_string(i);
    w.available_memory = r.pick(memory);
    w.max_concurrent_tests = 4;
    w.speed = r.pick(speed);
    w.supported_backends = {"cpu"};
    if (r.chance(0.5))
      w.available_accelerators["cuda"] = 2;
    c->add_worker(w, 0);
  }
  for (int i = 0; i < 2 * n; ++i) {
    test_requirements t;
    t.test_id = "load-" + std::to_string(i);
    t.minimum_memory = r.pick(std::vector<double>{0.5, 1, 2, 4});
    t.expected_duration = 1;
    c->submit(t, 0);
  }
  c->dispatch(0);
  c->drain_outbox([](uint32_t, std::vector<test_handle>&) {});
  return *c;
}

/// Tests to place, varied so caches and branches see a realistic mix.
std::vector<test_record> records(const cluster_state& c) {
  std::vector<test_record> out;
  rng r{7};
  const std::vector<std::string> models{"bert-base", "t5-small", "vit-base",
                                        "llama-7b"};
  for (int i = 0; i < 64; ++i) {
    test_record t;
    t.req.test_id = "t" + std::to_string(i);
    t.req.model_id = r.pick(models);
    t.req.model_family = t.req.model_id.substr(0, t.req.model_id.find('-'));
    t.req.priority = static_cast<int>(1 + r.below(5));
    t.req.expected_duration = r.pick(std::vector<double>{1, 2, 5, 10});
    t.req.minimum_memory = r.pick(std::vector<double>{0.5, 1, 2, 4, 8});
    t.need.memory = static_cast<float>(t.req.minimum_memory);
    if (i % 8 == 0) {
      t.req.required_accelerators["cuda"] = 1;
      t.need.accel[static_cast<size_t>(c.accel_index("cuda"))] = 1;
    }
    out.push_back(std::move(t));
  }
  return out;
}

void bm_pick(benchmark::State& state, std::string name) {
  auto& c = loaded_cluster(static_cast<int>(state.range(0)));
  auto s = make_strategy(name, 3);
  auto ts = records(c);
  size_t i = 0;
  uint64_t placed = 0;
  for (auto _ : state) {
    auto slot = s->pick(ts[i++ & 63], c);
    placed += slot != capacity_index::npos;
    benchmark::DoNotOptimize(slot);
  }
  state.counters["placed"] = benchmark::Counter(
    static_cast<double>(placed), benchmark::Counter::kAvgIterations);
}

int register_all() {
  for (auto& name : strategy_names())
    benchmark::RegisterBenchmark(("pick/" + name).c_str(), bm_pick, name)
      ->Arg(100)
      ->Arg(1000)
      ->Arg(10000)
      ->Arg(100000)
      ->Unit(benchmark::kNanosecond);
  return 0;
}

const int registered = register_all();

} // namespace

BENCHMARK_MAIN();
