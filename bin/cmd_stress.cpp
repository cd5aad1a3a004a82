// `alb stress`: a simulated stress run of the balancer in this process.

#include "bin/commands.hpp"

#include <cstdio>
#include <iostream>
#include <memory>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include "bin/common.hpp"
#include "runtime/strategy.hpp"

namespace alb::cli {

namespace {

struct stress_flags : run_flags {
  int workers = 20;
  uint64_t tests = 100;
  double duration = -1;
  bool burst = false;
  bool dynamic = false;
};

int run_stress(const stress_flags& f) {
  auto cfg = load_run_config(f, "stress");
  check_workers(cfg, f.workers, "--workers");
  simulation_options o;
  o.type = "stress";
  o.workers = f.workers;
  o.tests = f.tests;
  // Precedence: built-in default < file < LB_DEFAULT_DURATION < --duration.
  o.duration = f.duration >= 0 ? f.duration : cfg.default_duration;
  o.burst = f.burst;
  o.dynamic = f.dynamic;
  f.apply_simulation(o, cfg.scheduler);
  o.max_workers = cfg.max_workers;
  o.workers_profile = cfg.worker_profiles.at("balanced");
  o.tests_profile = cfg.test_profiles.at("balanced");
  auto metrics = metrics_session::start(f, cfg, "stress", o.scheduler.strategy);
  f.human() << "alb stress: " << o.workers << " workers, " << o.tests
            << " tests over " << o.duration << " s"
            << (o.burst ? ", bursts" : "")
            << (o.dynamic ? ", dynamic workers" : "") << ", strategy "
            << o.scheduler.strategy << ", seed " << o.seed << std::endl;
  return run_and_report(std::move(o), f, "stress", metrics.get());
}

} // namespace

void add_stress(CLI::App& app, int& rc) {
  auto f = std::make_shared<stress_flags>();
  auto* cmd = app.add_subcommand(
    "stress", "Stress-test the balancer with simulated workers and tests");
  cmd->footer(
    "Workers and tests are drawn from the default profiles (mixed CPU/GPU\n"
    "workers with 4-32 GB, tests needing 0.5-8 GB and 0-2 GPUs, priorities\n"
    "1-5, durations 0.05-0.5 s). Tests are submitted evenly over --duration\n"
    "seconds (or in a few bursts with --burst); the run ends when every test\n"
    "has ended. Latency is the wait from submission to start on a worker;\n"
    "its percentiles are exact. peak_throughput is the most completions in\n"
    "any 1 s sliding window; utilization fields are fractions 0-1.\n"
    "With --deterministic the run uses a virtual clock and one thread: it\n"
    "finishes as fast as the CPU allows and the same --seed gives the same\n"
    "placements. --threads N sets the actor threads (0 = one per core, at\n"
    "least 2; CAF's work-sharing scheduler). One scheduler is one core's\n"
    "work: --shards N splits it into N schedulers with their own threads\n"
    "and workers (on 2 cores, --threads 2 --shards 2 is the fastest; README\n"
    "\"Scale\"). Idle workers cost nothing: they send no message until a\n"
    "test ends. --busy-poll-us U keeps an idle scheduler thread polling\n"
    "for about U us before it sleeps: a lower wait for tests that arrive\n"
    "while it is idle, for the CPU the polling burns (one thread per shard).\n"
    "$LB_MAX_WORKERS caps workers present at once\n"
    "(--workers and --dynamic additions); profiles, the\n"
    "scheduler and /metrics come from --config (see README).\n"
    "Exit status: 0 ok, 1 run failed, 2 bad input.\n\n"
    "Example: alb stress --workers 50 --tests 2000 --duration 5 --burst "
    "--dynamic --output r.json");
  cmd->add_option("--workers", f->workers, "Number of simulated workers")
    ->default_val(20)
    ->check(CLI::Range(1, 1000000));
  cmd->add_option("--tests", f->tests, "Number of tests to submit")
    ->default_val(100)
    ->check(CLI::Range(uint64_t{1}, uint64_t{100000000}));
  cmd
    ->add_option("--duration", f->duration,
                 "Seconds over which tests are submitted (default 60, or "
                 "$LB_DEFAULT_DURATION)")
    ->check(CLI::Range(0.0, 1e6));
  cmd->add_flag("--burst", f->burst,
                "Submit tests in bursts rather than evenly distributed");
  cmd->add_flag("--dynamic", f->dynamic,
                "Add and remove workers during the test (some die mid-test)");
  f->add_simulation(cmd, "Placement strategy");
  f->add_output(cmd);
  f->add_config(cmd);
  f->add_metrics(cmd);
  cmd->callback(
    [f, &rc] { rc = guarded("stress", [f] { return run_stress(*f); }); });
}

} // namespace alb::cli
