// `alb spike`: load spikes on top of an even base load, and how the balancer
// recovers from each.

#include "bin/commands.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bin/common.hpp"
#include "runtime/strategy.hpp"

namespace alb::cli {

namespace {

struct spike_flags : run_flags {
  int workers = 20;
  uint64_t tests = 100;
  double duration = -1;
  int spikes = 3;
  double spike_size = 2.0;
};

/// What became of one spike, read from the time series.
struct spike_report {
  double start = 0;
  double end = 0;
  uint64_t tests = 0;
  double peak_queue = 0;
  double peak_throughput = 0;
};

// Bucket of the time series that holds time `t`.
size_t bucket_of(double t, double width) {
  return static_cast<size_t>(std::max(0.0, t) / width + 1e-9);
}

/// Finds when each spike's backlog drained. A queue-depth sample is the state
/// at the end of its bucket; a spike has recovered at the end of the first
/// bucket from its start on whose queue depth is back to the depth before the
/// spike (at most half a test above it) and stays there for the next bucket
/// too, so a single lucky sample does not end it.
std::vector<spike_report> find_recovery(const nlohmann::json& doc,
                                        const std::vector<spike_report>& in,
                                        double width) {
  std::vector<double> depth;
  std::vector<double> throughput;
  auto& ts = doc.at("time_series");
  for (auto& p : ts.at("queue_depth")) {
    auto i = bucket_of(p.at(0).get<double>(), width);
    if (i >= depth.size())
      depth.resize(i + 1, -1);
    depth[i] = p.at(1).get<double>();
  }
  // A spike's peak throughput is its busiest 1 s window, as the run's.
  for (auto& p : ts.at("throughput_1s")) {
    auto i = bucket_of(p.at(0).get<double>(), width);
    if (i >= throughput.size())
      throughput.resize(i + 1, 0);
    throughput[i] = p.at(1).get<double>();
  }
  // Unsampled buckets carry the previous sample forward.
  double carry = 0;
  for (auto& d : depth) {
    if (d < 0)
      d = carry;
    carry = d;
  }
  auto depth_at = [&](size_t i) {
    return i < depth.size() ? depth[i] : (depth.empty() ? 0 : depth.back());
  };
  std::vector<spike_report> out = in;
  for (auto& r : out) {
    auto first = bucket_of(r.start, width);
    double baseline = first == 0 ? 0 : depth_at(first - 1);
    auto last = std::max(depth.size(), throughput.size());
    size_t i = first;
    for (; i < last; ++i) {
      r.peak_queue = std::max(r.peak_queue, depth_at(i));
      if (i < throughput.size())
        r.peak_throughput = std::max(r.peak_throughput, throughput[i]);
      if (depth_at(i) <= baseline + 0.5 && depth_at(i + 1) <= baseline + 0.5)
        break;
    }
    // Rounded to the millisecond: bucket arithmetic leaves float noise.
    r.end
      = std::round(std::max(r.start, static_cast<double>(i + 1) * width) * 1000)
        / 1000;
  }
  return out;
}

int run_spike(const spike_flags& f) {
  auto cfg = load_run_config(f, "spike");
  check_workers(cfg, f.workers, "--workers");
  simulation_options o;
  o.type = "spike";
  o.workers = f.workers;
  // --tests is the total to submit, as the reference says: split into an
  // even base load and the spikes.
  auto split = split_spike_load(f.tests, f.spikes, f.spike_size);
  o.tests = split.base;
  // Precedence: built-in default < file < LB_DEFAULT_DURATION < --duration.
  o.duration = f.duration >= 0 ? f.duration : cfg.default_duration;
  f.apply_simulation(o, cfg.scheduler);
  o.max_workers = cfg.max_workers;
  o.workers_profile = cfg.worker_profiles.at("balanced");
  o.tests_profile = cfg.test_profiles.at("balanced");
  // Fine enough to see a spike come and go: about 200 points, never finer
  // than the scheduler's tick, which is how often the queue is sampled.
  auto width = std::clamp(o.duration / 200.0,
                          std::max(0.1, cfg.scheduler.tick_interval), 5.0);
  o.bucket_width = width;
  // Spikes evenly spaced inside the window (for 3: at 25%, 50%, 75%), so the
  // base load runs before the first and after the last.
  auto per_spike = split.per_spike;
  std::vector<spike_report> planned;
  for (int k = 0; k < f.spikes && per_spike > 0; ++k) {
    spike_report r;
    r.start = o.duration * (k + 1) / (f.spikes + 1);
    r.tests = per_spike;
    planned.push_back(r);
    o.extra_waves.push_back({r.start, per_spike, 0});
  }
  o.extra_configuration = {
    {"base_tests", split.base},     {"spike_count", planned.size()},
    {"spike_size", f.spike_size},   {"spike_tests", per_spike},
    {"initial_workers", f.workers},
  };
  auto reports = std::make_shared<std::vector<spike_report>>();
  o.on_document
    = [reports, planned, width, workers = f.workers](nlohmann::json& doc) {
        *reports = find_recovery(doc, planned, width);
        auto arr = nlohmann::json::array();
        for (auto& r : *reports)
          arr.push_back({{"start", r.start},
                         {"end", r.end},
                         {"tests", r.tests},
                         {"recovery_time", r.end - r.start},
                         {"peak_queue_depth", r.peak_queue},
                         {"peak_throughput", r.peak_throughput}});
        doc["spikes"] = std::move(arr);
        auto& m = doc["metrics"];
        auto final_workers = m.value("final_worker_count", uint64_t{0});
        doc["initial_workers"] = workers;
        doc["final_workers"] = final_workers;
        m["initial_workers"] = workers;
        m["final_workers"] = final_workers;
      };
  auto metrics = metrics_session::start(f, cfg, "spike", o.scheduler.strategy);
  f.human() << "alb spike: " << o.workers << " workers, " << f.tests
            << " tests: " << o.tests << " evenly over " << o.duration
            << " s and " << planned.size() << " spikes of " << per_spike
            << " tests, strategy " << o.scheduler.strategy << ", seed "
            << o.seed << std::endl;
  auto rc = run_and_report(std::move(o), f, "spike", metrics.get());
  if (!reports->empty()) {
    std::fprintf(f.human_file(),
                 "spike  start(s)  tests  peak queue  peak tput/s  "
                 "recovered(s)  recovery(s)\n");
    int k = 1;
    for (auto& r : *reports)
      std::fprintf(f.human_file(),
                   "%5d  %8.2f  %5llu  %10.0f  %11.1f  %12.2f  %11.2f\n", k++,
                   r.start, static_cast<unsigned long long>(r.tests),
                   r.peak_queue, r.peak_throughput, r.end, r.end - r.start);
    std::fflush(f.human_file());
  }
  return rc;
}

} // namespace

void add_spike(CLI::App& app, int& rc) {
  auto f = std::make_shared<spike_flags>();
  auto* cmd = app.add_subcommand(
    "spike", "Load spikes on top of a base load, and the recovery from each");
  cmd->footer(
    "--tests is the total number of tests to submit (as in the reference),\n"
    "split into an even base load over --duration seconds and --spikes\n"
    "bursts that each arrive at once and are --spike-size times the base\n"
    "load (the default 100 tests, 3 spikes of 2x: 13 base + 3 x 29),\n"
    "evenly spaced in the window (3 spikes: at 25%, 50% and 75%). Workers\n"
    "and tests are drawn from the default profiles. The JSON\n"
    "adds initial_workers, final_workers and spikes: [{start, end, tests,\n"
    "recovery_time, peak_queue_depth, peak_throughput}], where end is when\n"
    "the queue drained back to its depth before the spike (from the\n"
    "time_series, whose throughput and queue_depth show each spike).\n"
    "--workers is capped by $LB_MAX_WORKERS.\n"
    "Exit status: 0 ok, 1 run failed, 2 bad input.\n\n"
    "Example: alb spike --workers 30 --tests 500 --duration 180 "
    "--output spike_test_results.json");
  cmd->add_option("--workers", f->workers, "Initial number of workers")
    ->default_val(20)
    ->check(CLI::Range(1, 1000000));
  cmd
    ->add_option("--tests", f->tests,
                 "Total number of tests to submit (base load plus spikes)")
    ->default_val(100)
    ->check(CLI::Range(uint64_t{1}, uint64_t{100000000}));
  cmd
    ->add_option("--duration", f->duration,
                 "Seconds over which tests are submitted (default 60, or "
                 "$LB_DEFAULT_DURATION)")
    ->check(CLI::Range(0.0, 1e6));
  cmd->add_option("--spikes", f->spikes, "Number of load spikes")
    ->default_val(3)
    ->check(CLI::Range(0, 1000));
  cmd
    ->add_option("--spike-size", f->spike_size,
                 "Size of each spike as a multiple of the base load")
    ->default_val(2.0)
    ->check(CLI::Range(0.0, 1000.0));
  f->add_simulation(cmd, "Placement strategy", false);
  f->add_output(cmd);
  f->add_config(cmd);
  f->add_metrics(cmd);
  cmd->callback(
    [f, &rc] { rc = guarded("spike", [f] { return run_spike(*f); }); });
}

} // namespace alb::cli
