// The built-in defaults: run sizes, worker profiles and test profiles.

#include "runtime/config.hpp"

#include <utility>

namespace alb {

namespace {

test_configuration make_size(int workers, int tests, double duration,
                             std::string description) {
  test_configuration x;
  x.workers = workers;
  x.tests = tests;
  x.duration = duration;
  x.description = std::move(description);
  return x;
}

} // namespace

config default_config() {
  config cfg;
  auto& sizes = cfg.test_configurations;
  // small and medium are the reference's; the scenario_* sizes keep every
  // shipped scenario well under a minute.
  sizes["small"]
    = make_size(5, 20, 10, "Small-scale test with few workers and tests");
  sizes["medium"] = make_size(
    20, 100, 30, "Medium-scale test with moderate workers and tests");
  sizes["large"]
    = make_size(50, 500, 60, "Large-scale test with many workers and tests");
  sizes["scenario_small"]
    = make_size(20, 200, 5, "Scenario size: 20 workers, 200 tests over 5 s");
  sizes["scenario_medium"]
    = make_size(30, 500, 8, "Scenario size: 30 workers, 500 tests over 8 s");
  sizes["scenario_large"] = make_size(
    50, 1000, 10, "Scenario size: 50 workers, 1000 tests over 10 s");

  auto& workers = cfg.worker_profiles;
  {
    auto& w = workers["balanced"];
    w.memory_distribution = {4, 8, 16, 32};
    w.cuda_distribution = {0, 1, 2, 4};
    w.description = "Balanced mix of CPU and GPU workers";
  }
  {
    auto& w = workers["cpu_heavy"];
    w.memory_distribution = {8, 16, 32, 64};
    w.cuda_distribution = {0, 0, 0, 1};
    w.description = "Mostly CPU workers with high memory";
  }
  {
    auto& w = workers["gpu_heavy"];
    w.memory_distribution = {16, 32, 64};
    w.cuda_distribution = {1, 2, 4, 8};
    w.description = "GPU servers with several devices each";
  }
  {
    auto& w = workers["heterogeneous"];
    w.memory_distribution = {2, 4, 8, 16, 32, 64, 128};
    w.cuda_distribution = {0, 0, 0, 1, 2, 8};
    w.cores_distribution = {1, 2, 4, 8, 16, 32};
    w.speed_distribution = {0.5, 1, 1, 2, 4};
    w.description = "From small slow machines to large fast GPU servers";
  }
  {
    auto& w = workers["gpu_scarce"];
    w.memory_distribution = {8, 16, 32};
    w.cuda_distribution = {0, 0, 0, 0, 1, 2};
    w.description = "About one worker in three has a GPU";
  }
  {
    auto& w = workers["memory_constrained"];
    w.memory_distribution = {4, 8};
    w.cuda_distribution = {0, 0, 1};
    w.cores_distribution = {2, 4};
    w.description = "Small machines where memory is the bottleneck";
  }
  {
    auto& w = workers["few_slots"];
    w.memory_distribution = {8, 16};
    w.cuda_distribution = {0};
    w.cores_distribution = {1, 2};
    w.description = "CPU workers with one or two test slots each";
  }

  auto& tests = cfg.test_profiles;
  {
    auto& t = tests["balanced"];
    t.memory_requirements = {0.5, 1, 2, 4, 8};
    t.cuda_requirements = {0, 0, 0, 1, 2};
    t.priority_distribution = {1, 2, 2, 3, 3, 3, 4, 4, 5};
    t.description = "Balanced mix of CPU and GPU tests";
  }
  {
    auto& t = tests["quick"];
    t.memory_requirements = {0.5, 1, 2};
    t.cuda_requirements = {0, 0, 0, 1};
    t.duration_distribution = {0.05, 0.1, 0.2};
    t.description = "Short CPU-mostly tests";
  }
  {
    auto& t = tests["memory_intensive"];
    t.memory_requirements = {2, 4, 6, 8};
    t.cuda_requirements = {0};
    t.duration_distribution = {0.2, 0.5, 1.0};
    t.description = "Tests that need a large share of a worker's memory";
  }
  {
    auto& t = tests["gpu_intensive"];
    t.memory_requirements = {1, 2, 4};
    t.cuda_requirements = {0, 0, 1, 1, 2};
    t.duration_distribution = {0.1, 0.3, 0.6};
    t.description = "Most tests need one or two GPUs";
  }
  {
    auto& t = tests["long_tail"];
    t.memory_requirements = {0.5, 1, 2};
    t.cuda_requirements = {0};
    // Drawn uniformly, so repeats set the weights: mostly short tests, a few
    // 60 times longer.
    t.duration_distribution = {0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05,
                               0.1,  0.1,  0.1,  0.1,  0.2,  0.2,  0.5,  3.0};
    t.description = "Mostly short tests with a heavy tail of long ones";
  }
  {
    auto& t = tests["low_priority_long"];
    t.memory_requirements = {0.5, 1, 2};
    t.cuda_requirements = {0};
    t.priority_distribution = {4, 5};
    t.duration_distribution = {0.5, 1.0};
    t.description = "Low-priority tests that hold a slot for a while";
  }
  return cfg;
}

} // namespace alb
