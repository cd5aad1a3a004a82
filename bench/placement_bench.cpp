// One placement decision per strategy on a loaded cluster of 100 to 100,000
// workers: `pick` alone, the part of the scheduler's per-test work that
// depends on the cluster's size. `pick` places a mix of tests (one in eight
// needs a GPU) on workers whose memory, speed and GPUs are drawn
// independently; `pick_gpu` places only GPU tests on a fleet where the GPU
// machines are also the big ones (64 GB with 2 GPUs, against 16 GB without),
// so the workers with the least free memory cannot hold a GPU test.
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

/// Which fleet a benchmark places on.
enum class fleet {
  /// Memory, speed and GPUs drawn independently.
  mixed,
  /// Half the workers have 2 GPUs and 64 GB, the others none and 16 GB.
  big_gpu_machines,
};

/// A cluster of `n` workers of `kind`, half of its test slots taken, shared
/// by every benchmark of that size and kind.
cluster_state& loaded_cluster(int n, fleet kind) {
  static std::map<std::pair<int, fleet>, std::unique_ptr<cluster_state>>
    clusters;
  auto& c = clusters[{n, kind}];
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
    if (kind == fleet::big_gpu_machines)
      w.available_memory = w.available_accelerators.empty() ? 16 : 64;
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

/// Tests to place, varied so caches and branches see a realistic mix; with
/// `gpu_only` every one needs a GPU.
std::vector<test_record> records(const cluster_state& c, bool gpu_only) {
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
    if (gpu_only || i % 8 == 0) {
      t.req.required_accelerators["cuda"] = 1;
      t.need.accel[static_cast<size_t>(c.accel_index("cuda"))] = 1;
    }
    out.push_back(std::move(t));
  }
  return out;
}

void bm_pick(benchmark::State& state, std::string name, fleet kind) {
  auto& c = loaded_cluster(static_cast<int>(state.range(0)), kind);
  auto s = make_strategy(name, 3);
  auto ts = records(c, kind == fleet::big_gpu_machines);
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
  for (auto [prefix, kind] : {std::pair{"pick/", fleet::mixed},
                              std::pair{"pick_gpu/", fleet::big_gpu_machines}})
    for (auto& name : strategy_names())
      benchmark::RegisterBenchmark((prefix + name).c_str(), bm_pick, name, kind)
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
