// `alb stress`: a simulated stress run of the balancer in this process.

#include "bin/commands.hpp"

#include <cstdio>
#include <iostream>
#include <memory>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include "actors/simulation_run.hpp"
#include "runtime/output.hpp"
#include "runtime/strategy.hpp"

namespace alb::cli {

namespace {

struct stress_flags {
  int workers = 20;
  uint64_t tests = 100;
  double duration = 60;
  bool burst = false;
  bool dynamic = false;
  std::string output;
  uint64_t seed = 1;
  std::string strategy = "least_loaded";
  double time_scale = 1;
  bool deterministic = false;
  int threads = 0;
  bool quiet = false;
  bool check = false;
};

void print_progress(const run_progress& p, uint64_t total, bool tty) {
  char line[200];
  std::snprintf(line, sizeof(line),
                "[%6.1fs] submitted %llu/%llu  completed %llu  failed %llu  "
                "waiting %llu  running %llu  workers %llu",
                p.elapsed, static_cast<unsigned long long>(p.submitted),
                static_cast<unsigned long long>(total),
                static_cast<unsigned long long>(p.completed),
                static_cast<unsigned long long>(p.failed),
                static_cast<unsigned long long>(p.waiting),
                static_cast<unsigned long long>(p.in_flight),
                static_cast<unsigned long long>(p.workers));
  if (tty)
    std::cerr << "\r" << line << "\033[K" << std::flush;
  else
    std::cerr << line << "\n";
}

int run_stress(const stress_flags& f) {
  if (!f.output.empty()) {
    if (auto err = check_output_path(f.output); !err.empty()) {
      std::cerr << "alb stress: error: " << err << "\n";
      return 2;
    }
  }
  simulation_options o;
  o.type = "stress";
  o.workers = f.workers;
  o.tests = f.tests;
  o.duration = f.duration;
  o.burst = f.burst;
  o.dynamic = f.dynamic;
  o.seed = f.seed;
  o.scheduler.strategy = f.strategy;
  o.scheduler.seed = f.seed;
  o.time_scale = f.time_scale;
  o.deterministic = f.deterministic;
  o.threads = f.threads;
  o.check_invariants = f.check;
  bool tty = ::isatty(STDERR_FILENO) != 0;
  if (!f.quiet)
    o.on_progress = [&](const run_progress& p) {
      print_progress(p, f.tests, tty);
    };
  std::cout << "alb stress: " << f.workers << " workers, " << f.tests
            << " tests over " << f.duration << " s"
            << (f.burst ? ", bursts" : "")
            << (f.dynamic ? ", dynamic workers" : "") << ", strategy "
            << f.strategy << ", seed " << f.seed << "\n";
  simulation_result r;
  try {
    r = run_simulation(o);
  } catch (const std::invalid_argument& e) {
    std::cerr << "alb stress: error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "\nalb stress: error: " << e.what() << "\n";
    return 1;
  }
  if (!f.quiet && tty)
    std::cerr << "\n";
  std::cout << format_summary(r.document);
  std::printf("wall time %.2f s\n", r.wall_seconds);
  for (auto& v : r.violations)
    std::cerr << "alb stress: invariant violated: " << v << "\n";
  if (!f.output.empty()) {
    try {
      write_file_atomic(f.output, r.document.dump(2) + "\n");
    } catch (const std::exception& e) {
      std::cerr << "alb stress: error: " << e.what() << "\n";
      return 1;
    }
    std::cout << "results written to " << f.output << "\n";
  }
  return r.violations.empty() ? 0 : 1;
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
    "has ended. Latency is the wait from submission to start on a worker.\n"
    "With --deterministic the run uses a virtual clock and one thread: it\n"
    "finishes as fast as the CPU allows and the same --seed gives the same\n"
    "placements. Exit status: 0 ok, 1 run failed, 2 bad input.\n\n"
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
                 "Seconds over which tests are submitted")
    ->default_val(60)
    ->check(CLI::Range(0.0, 1e6));
  cmd->add_flag("--burst", f->burst,
                "Submit tests in bursts rather than evenly distributed");
  cmd->add_flag("--dynamic", f->dynamic,
                "Add and remove workers during the test (some die mid-test)");
  cmd->add_option("--output", f->output, "Save results to this JSON file");
  cmd->add_option("--seed", f->seed, "Seed for every random draw")
    ->default_val(1);
  cmd
    ->add_option("--strategy", f->strategy,
                 "Placement strategy: " + [] {
                   std::string s;
                   for (auto& n : strategy_names())
                     s += (s.empty() ? "" : ", ") + n;
                   return s;
                 }())
    ->default_val("least_loaded")
    ->check(CLI::IsMember(strategy_names()));
  cmd
    ->add_option("--time-scale", f->time_scale,
                 "Simulated seconds per real second (10 = ten times faster)")
    ->default_val(1)
    ->check(CLI::Range(1e-3, 1e6));
  cmd->add_flag("--deterministic", f->deterministic,
                "Virtual clock, one thread: fast and reproducible from --seed");
  cmd->add_option("--threads", f->threads,
                  "Scheduler threads (0 = one per core)")
    ->default_val(0)
    ->check(CLI::Range(0, 256));
  cmd->add_flag("--check-invariants", f->check,
                "Verify reservations and counts on every scheduler tick");
  cmd->add_flag("-q,--quiet", f->quiet, "No progress line");
  cmd->callback([f, &rc] { rc = run_stress(*f); });
}

} // namespace alb::cli
