// `alb benchmark`: the reference grid of cluster and test-set sizes, run for
// every strategy on virtual time, with the learned history loaded from and
// saved to `--db-path`.

#include "bin/commands.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>

#include <CLI/CLI.hpp>

#include "bin/common.hpp"
#include "runtime/history.hpp"
#include "runtime/makespan_bound.hpp"
#include "runtime/output.hpp"
#include "runtime/strategy.hpp"

namespace alb::cli {

namespace {

/// Pairs above this many workers x tests are skipped unless --full.
constexpr uint64_t max_default_pairs = 20000;

struct benchmark_flags : run_flags {
  bool full = false;
  std::vector<std::string> strategies;
  std::string workload;
  uint64_t seed = 1;
  std::string db_path;
  bool no_db = false;
  std::vector<int> workers;
  std::vector<uint64_t> tests;
  double duration = 0;
};

std::string shipped_workload_path() {
  namespace fs = std::filesystem;
  auto scenarios = shipped_scenarios_path();
  if (scenarios.empty())
    return {};
  auto p = fs::path{scenarios}.parent_path() / "benchmark_workload.toml";
  std::error_code ec;
  return fs::is_regular_file(p, ec) ? p.string() : std::string{};
}

/// The bound no schedule of the run `o` can beat (runtime/makespan_bound):
/// the same workers and tests `run_simulation` draws, each test's work at
/// the jitter's lower end.
makespan_bound lower_bound(const simulation_options& o) {
  auto inst = draw_instance(o);
  return bound_of(inst.workers, inst.tests, simulated_jitter_low);
}

/// What `lower_bound` is, for the footer and the JSON.
constexpr const char* lower_bound_text
  = "max over release times r of r + the largest of, for the tests "
    "released at or after r with their least work (expected duration x "
    "0.8, the jitter's lower end): (a) the non-preemptive per-slot packing "
    "bound on uniform slots, (b) the preemptive optimum on uniform slots (k "
    "longest tests over the k fastest slots), (c) the same for accelerator "
    "tests on the slots that can hold one, (d) memory x work over the "
    "fleet's memory x speed";

double num(const nlohmann::json& m, const char* key) {
  auto it = m.find(key);
  return it != m.end() && it->is_number() ? it->get<double>() : 0.0;
}

int run_benchmark(const benchmark_flags& f) {
  auto cfg = load_run_config(f, "benchmark");
  auto workload = f.workload.empty() ? shipped_workload_path() : f.workload;
  if (workload.empty())
    throw config_error("cannot find the shipped benchmark_workload.toml next "
                       "to scenarios.toml; pass --workload FILE");
  merge_config_file(cfg, workload);
  for (auto& w : cfg.warnings)
    std::cerr << "alb benchmark: warning: " << w << "\n";
  auto profile_name = [](auto& map) {
    return map.count("benchmark") > 0 ? std::string{"benchmark"}
                                      : std::string{"balanced"};
  };
  auto wp_name = profile_name(cfg.worker_profiles);
  auto tp_name = profile_name(cfg.test_profiles);
  auto strategies = f.strategies.empty() ? strategy_names() : f.strategies;
  for (auto& s : strategies) {
    auto& all = strategy_names();
    if (std::find(all.begin(), all.end(), s) == all.end()) {
      std::string valid;
      for (auto& n : all)
        valid += (valid.empty() ? "" : ", ") + n;
      std::cerr << "alb benchmark: error: unknown strategy '" << s
                << "' (valid: " << valid << ")\n";
      return 2;
    }
  }
  std::vector<int> workers = f.workers;
  std::vector<uint64_t> tests = f.tests;
  if (workers.empty())
    workers = {5, 10, 20, 50, 100};
  if (tests.empty())
    tests = {100, 500, 1000};
  std::vector<std::pair<int, uint64_t>> grid;
  for (auto w : workers)
    for (auto t : tests)
      if (f.full || static_cast<uint64_t>(w) * t <= max_default_pairs)
        grid.emplace_back(w, t);
  if (f.full && f.workers.empty() && f.tests.empty())
    grid.emplace_back(1000, 10000);
  for (auto& [w, t] : grid)
    check_workers(cfg, w, "--workers");
  auto output
    = f.output.empty() ? std::string{"benchmark_results.json"} : f.output;
  if (auto err = check_output_path(output); !err.empty()) {
    std::cerr << "alb benchmark: error: " << err << "\n";
    return 2;
  }
  auto db_path = f.db_path.empty() ? cfg.cluster.db_path : f.db_path;
  execution_history prior;
  size_t loaded_pairs = 0;
  if (!f.no_db) {
    try {
      prior = execution_history::load(db_path);
      loaded_pairs = prior.size();
    } catch (const history_error& e) {
      std::cerr << "alb benchmark: error: " << e.what() << "\n";
      return 2;
    }
  }

  std::cout << "alb benchmark: " << grid.size() << " configurations x "
            << strategies.size() << " strategies, workload " << workload
            << " (workers '" << wp_name << "', tests '" << tp_name
            << "'), seed " << f.seed << ", history "
            << (f.no_db ? std::string{"off"}
                        : db_path + " (" + std::to_string(prior.size())
                            + " model/worker pairs known)")
            << std::endl;
  std::printf("%7s %6s %-21s %9s %9s %9s %7s %9s %8s %6s %6s %6s\n", "workers",
              "tests", "strategy", "tput/s", "p50 s", "p99 s", "ok %",
              "makespan", "lower", "ratio", "util%", "sd");
  std::fflush(stdout);

  auto results = nlohmann::json::array();
  execution_history learned;
  bool failed = false;
  auto wall_start = std::chrono::steady_clock::now();
  for (auto& [w, t] : grid) {
    for (auto& s : strategies) {
      simulation_options o;
      o.type = "benchmark";
      o.workers = w;
      o.tests = t;
      o.duration = f.duration;
      o.seed = f.seed;
      o.deterministic = true;
      o.workers_profile = cfg.worker_profiles.at(wp_name);
      o.tests_profile = cfg.test_profiles.at(tp_name);
      o.scheduler = cfg.scheduler;
      o.scheduler.strategy = s;
      o.scheduler.seed = f.seed;
      o.scheduler.strategy_by_type.clear();
      // Every cell starts from what the database knew, so cells do not
      // depend on their order; what each learns is saved at the end.
      auto history = std::make_shared<execution_history>(prior);
      o.scheduler.history = history;
      auto bound = lower_bound(o);
      auto lb = bound.total;
      simulation_result r;
      try {
        r = run_simulation(o);
      } catch (const std::invalid_argument& e) {
        std::cerr << "alb benchmark: error: " << e.what() << "\n";
        return 2;
      } catch (const std::exception& e) {
        std::cerr << "alb benchmark: error: " << w << " workers, " << t
                  << " tests, " << s << ": " << e.what() << "\n";
        failed = true;
        continue;
      }
      learned.merge(history->fresh());
      auto m = r.document.value("metrics", nlohmann::json::object());
      auto makespan = num(m, "makespan");
      m["lower_bound"] = lb;
      m["lower_bound_parts"] = {{"release", bound.release},
                                {"packing", bound.packing},
                                {"preemptive", bound.preemptive},
                                {"accelerator", bound.accelerator},
                                {"memory", bound.memory}};
      m["makespan_ratio"] = lb > 0 ? makespan / lb : 0.0;
      std::printf(
        "%7d %6llu %-21s %9.2f %9.3f %9.3f %7.1f %9.2f %8.2f %6.2f "
        "%6.1f %6.1f\n",
        w, static_cast<unsigned long long>(t), s.c_str(),
        num(m, "avg_throughput"), num(m, "p50_latency"), num(m, "p99_latency"),
        num(m, "success_rate"), makespan, lb, lb > 0 ? makespan / lb : 0.0,
        100 * num(m, "worker_utilization"), num(m, "utilization_stddev"));
      std::fflush(stdout);
      results.push_back({{"workers", w},
                         {"tests", t},
                         {"strategy", s},
                         {"metrics", std::move(m)},
                         {"wall_seconds", r.wall_seconds}});
      if (!r.violations.empty())
        failed = true;
    }
  }
  auto wall = std::chrono::duration<double>(std::chrono::steady_clock::now()
                                            - wall_start)
                .count();
  if (!f.no_db) {
    prior.merge(learned);
    try {
      prior.save(db_path);
    } catch (const history_error& e) {
      std::cerr << "alb benchmark: error: " << e.what() << "\n";
      return 1;
    }
  }
  auto grid_json = nlohmann::json::array();
  for (auto& [w, t] : grid)
    grid_json.push_back({{"workers", w}, {"tests", t}});
  nlohmann::json doc = {
    {"type", "benchmark"},
    {"configuration",
     {{"full", f.full},
      {"seed", f.seed},
      {"duration", f.duration},
      {"deterministic", true},
      {"workload", workload},
      {"worker_profile", wp_name},
      {"test_profile", tp_name},
      {"strategies", strategies},
      {"grid", grid_json},
      {"speed_hints", cfg.scheduler.speed_hints},
      {"db_path", f.no_db ? std::string{} : db_path},
      {"history_pairs_loaded", loaded_pairs},
      {"lower_bound", lower_bound_text},
      {"wall_seconds", wall}}},
    {"results", std::move(results)},
  };
  try {
    write_file_atomic(output, doc.dump(2) + "\n");
  } catch (const std::exception& e) {
    std::cerr << "alb benchmark: error: " << e.what() << "\n";
    return 1;
  }
  std::printf("wall time %.1f s; results written to %s\n", wall,
              output.c_str());
  return failed ? 1 : 0;
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in{s};
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty())
      out.push_back(item);
  return out;
}

} // namespace

void add_benchmark(CLI::App& app, int& rc) {
  auto f = std::make_shared<benchmark_flags>();
  auto* cmd = app.add_subcommand(
    "benchmark", "Run the reference grid of sizes for every strategy");
  cmd->footer(
    "Runs workers {5,10,20,50,100} x tests {100,500,1000}, skipping pairs\n"
    "over 20,000 workers x tests unless --full (which also adds 1,000 workers\n"
    "x 10,000 tests), for every strategy, on a virtual clock: deterministic\n"
    "from --seed and as fast as the CPU allows. Every test is submitted at\n"
    "once (--duration 0), so makespan is the time to finish the whole set.\n"
    "Workers and tests are drawn from the 'benchmark' profiles of --workload\n"
    "(default: the shipped configs/benchmark_workload.toml: mixed CPU/GPU\n"
    "workers of different speeds and memory, mixed test sizes and\n"
    "priorities), else from 'balanced'.\n\n"
    "Columns: throughput (completed tests per simulated second), latency\n"
    "p50/p99 (submission to start), success rate, makespan (first submission\n"
    "to last end), lower bound and makespan/lower bound, worker utilization\n"
    "mean and standard deviation in percentage points. Lower bound: a\n"
    "makespan no schedule can beat, not even one knowing every draw: the\n"
    "maximum over release times r of r plus the largest of, for the tests\n"
    "submitted at or after r, each taking 0.8 x its expected duration (the\n"
    "jitter's lower end): (a) whole tests packed on slots of their speed,\n"
    "(b) the preemptive optimum (k longest tests on the k fastest slots),\n"
    "(c) the same for GPU tests on the slots that can hold one, (d) memory\n"
    "x time over the fleet's memory x speed.\n\n"
    "The learned execution-time history is read from --db-path (default\n"
    "[cluster] db_path, alb.db) before the runs and saved back afterwards in\n"
    "one transaction; a second run with the database present starts\n"
    "knowing every worker's pace. Each configuration starts from what the\n"
    "database held, so results do not depend on their order.\n"
    "Exit status: 0 ok, 1 a run failed, 2 bad input.\n\n"
    "Example: alb benchmark --strategies adaptive,round_robin --output b.json");
  cmd->add_flag(
    "--full", f->full,
    "Also run pairs over 20,000 workers x tests and 1,000 x 10,000");
  cmd
    ->add_option_function<std::string>(
      "--strategies",
      [f](const std::string& s) { f->strategies = split_list(s); },
      "Comma-separated strategies (default all)")
    ->type_name("LIST");
  cmd
    ->add_option("--workload", f->workload,
                 "Config file with 'benchmark' worker and test profiles")
    ->check(CLI::ExistingFile);
  cmd->add_option("--seed", f->seed, "Seed for every random draw")
    ->default_val(1);
  cmd->add_option("--db-path", f->db_path,
                  "SQLite history database (default alb.db)");
  cmd->add_flag("--no-db", f->no_db,
                "Neither read nor save the history database");
  cmd
    ->add_option("--workers", f->workers,
                 "Worker counts of the grid (default 5,10,20,50,100)")
    ->delimiter(',')
    ->check(CLI::Range(1, 1000000));
  cmd
    ->add_option("--tests", f->tests,
                 "Test counts of the grid (default 100,500,1000)")
    ->delimiter(',')
    ->check(CLI::Range(uint64_t{1}, uint64_t{100000000}));
  cmd
    ->add_option("--duration", f->duration,
                 "Seconds over which each run's tests are submitted")
    ->default_val(0)
    ->check(CLI::Range(0.0, 1e6));
  cmd->add_option("--output", f->output,
                  "Save results to this JSON file (default "
                  "benchmark_results.json)");
  f->add_config(cmd);
  cmd->callback(
    [f, &rc] { rc = guarded("benchmark", [f] { return run_benchmark(*f); }); });
}

} // namespace alb::cli
