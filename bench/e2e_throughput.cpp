// End-to-end throughput of the whole actor pipeline in one process:
// submitter -> scheduler -> simulated workers -> scheduler, with tests that
// take no time, so what is measured is the balancer itself. Prints tests/s
// per pool size (median of --reps runs), resident memory per worker and
// CPU time per test (all threads; with --virtual on it is the pipeline's own
// cost, without thread hand-offs or CAF's idle polling, and hardly moves
// when other processes share the machine).
//
//   bench_e2e_throughput [--tests N] [--reps R] [--workers A,B,...]
//                        [--metrics off|on|both] [--virtual on|off]
//
// With --metrics both, every pool size runs with and without the Prometheus
// observer (registry and observer as `--metrics-port` sets them up, minus
// the HTTP server, which only costs on scrape) so the overhead can be read
// off side by side.

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <sys/resource.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <CLI/CLI.hpp>

#include "actors/simulation_run.hpp"
#include "metrics/prometheus_observer.hpp"
#include "metrics/registry.hpp"

namespace {

long rss_kb() {
  // Current (not peak) resident set from /proc: the peak would hide what
  // a later, smaller run uses.
  long pages = 0;
  long resident = 0;
  if (auto* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2)
      resident = 0;
    std::fclose(f);
  }
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

double cpu_seconds() {
  // User plus system time of every thread: unlike wall time, it barely
  // moves when other processes compete for the cores.
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec)
         + static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

} // namespace

int main(int argc, char** argv) {
  uint64_t tests = 500000;
  int reps = 3;
  std::vector<int> pools{1000, 10000};
  std::string metrics_mode = "off";
  std::string virtual_mode = "off";
  CLI::App app{"End-to-end throughput of the balancer in one process"};
  app.add_option("--tests", tests, "Tests per run")
    ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 32));
  app.add_option("--reps", reps, "Runs per pool size and mode")
    ->check(CLI::Range(1, 1000));
  app.add_option("--workers", pools, "Pool sizes, e.g. 1000,10000")
    ->delimiter(',')
    ->check(CLI::Range(1, 10000000));
  app.add_option("--metrics", metrics_mode, "With the Prometheus observer")
    ->check(CLI::IsMember({"off", "on", "both"}));
  app
    .add_option("--virtual", virtual_mode,
                "Virtual time on one thread: the pipeline's own CPU cost")
    ->check(CLI::IsMember({"off", "on"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "bench_e2e_throughput: error: %s\n", e.what());
    return 2;
  }
  bool virtual_time = virtual_mode == "on";
  std::printf("cores: %u, tests per run: %llu, runs per pool: %d\n",
              std::thread::hardware_concurrency(),
              static_cast<unsigned long long>(tests), reps);
  std::printf("%8s %8s %14s %14s %14s %12s %12s\n", "workers", "metrics",
              "median t/s", "min t/s", "max t/s", "KB/worker", "CPU us/test");
  std::vector<bool> modes;
  if (metrics_mode != "on")
    modes.push_back(false);
  if (metrics_mode != "off")
    modes.push_back(true);
  for (auto workers : pools) {
    // Modes alternate run by run (off, on, off, on, ...) rather than all
    // runs of one mode first: the process's heap and the machine's state
    // drift over a series, and that drift must not land on one mode.
    std::vector<std::vector<double>> rates(modes.size());
    std::vector<double> kb_per_worker(modes.size(), 0);
    std::vector<std::vector<double>> cpu_us(modes.size());
    for (int r = 0; r < reps; ++r)
      for (size_t m = 0; m < modes.size(); ++m) {
        bool with_metrics = modes[m];
        alb::simulation_options o;
        o.type = "bench";
        o.workers = workers;
        o.tests = tests;
        o.duration = 0; // everything submitted at once, in batches
        o.tests_profile.duration_distribution = {0.0};
        o.tests_profile.memory_requirements = {0.0};
        o.tests_profile.cuda_requirements = {0};
        o.tests_profile.retries = 0;
        o.workers_profile.cuda_distribution = {0};
        o.workers_profile.cores_distribution = {8};
        o.seed = static_cast<uint64_t>(r + 1);
        // Virtual time runs everything on one thread: the pure CPU cost of
        // the pipeline per test, without thread hand-offs.
        o.deterministic = virtual_time;
        std::unique_ptr<alb::metrics::registry> reg;
        std::unique_ptr<alb::metrics::prometheus_observer> obs;
        if (with_metrics) {
          reg = std::make_unique<alb::metrics::registry>(
            alb::metrics::run_info{"bench", o.scheduler.strategy});
          obs = std::make_unique<alb::metrics::prometheus_observer>(*reg);
          o.observer = obs.get();
        }
        auto before = rss_kb();
        long during = 0;
        o.on_progress = [&](const alb::run_progress&) {
          during = std::max(during, rss_kb());
        };
        auto cpu0 = cpu_seconds();
        auto res = alb::run_simulation(o);
        cpu_us[m].push_back((cpu_seconds() - cpu0) * 1e6
                            / static_cast<double>(tests));
        auto& doc = res.document["metrics"];
        auto done = doc["completed_tests"].get<double>();
        auto span
          = virtual_time ? res.wall_seconds : doc["makespan"].get<double>();
        if (done != static_cast<double>(tests)) {
          std::fprintf(stderr, "run lost tests: %.0f of %llu completed\n", done,
                       static_cast<unsigned long long>(tests));
          return 1;
        }
        rates[m].push_back(span > 0 ? done / span : 0);
        if (during > before)
          kb_per_worker[m] = static_cast<double>(during - before) / workers;
      }
    std::vector<double> medians;
    for (size_t m = 0; m < modes.size(); ++m) {
      auto& xs = rates[m];
      std::sort(xs.begin(), xs.end());
      medians.push_back(xs[xs.size() / 2]);
      auto& cs = cpu_us[m];
      std::sort(cs.begin(), cs.end());
      std::printf("%8d %8s %14.0f %14.0f %14.0f %12.1f %12.2f\n", workers,
                  modes[m] ? "on" : "off", medians.back(), xs.front(),
                  xs.back(), kb_per_worker[m], cs[cs.size() / 2]);
    }
    if (modes.size() == 2 && medians[0] > 0)
      std::printf("%8d metrics cost: %.1f%% of the median throughput\n",
                  workers, 100.0 * (medians[0] - medians[1]) / medians[0]);
  }
  return 0;
}
