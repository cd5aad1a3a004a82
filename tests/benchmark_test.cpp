#define BOOST_TEST_MODULE benchmark
#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

#include "actors/simulation_run.hpp"
#include "runtime/config.hpp"
#include "runtime/makespan_bound.hpp"
#include "runtime/simulation.hpp"
#include "runtime/strategy.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

using namespace alb;

namespace {

/// A scratch directory, removed at the end.
struct scratch {
  std::string dir;
  scratch() {
    char buf[] = "/tmp/alb_bench_XXXXXX";
    BOOST_REQUIRE(::mkdtemp(buf) != nullptr);
    dir = buf;
  }
  ~scratch() { std::system(("rm -rf '" + dir + "'").c_str()); }
};

struct outcome {
  int rc = -1;
  std::string out;
};

/// Runs `alb benchmark ARGS` in `dir` with LB_* unset; captures both streams.
outcome run(const std::string& dir, const std::string& args) {
  auto log = dir + "/log.txt";
  auto cmd = "cd '" + dir + "' && env -u LB_CONFIG_PATH -u LB_MAX_WORKERS "
             + "-u LB_DEFAULT_DURATION -u LB_LOG_LEVEL " + ALB_BINARY
             + " benchmark " + args + " > '" + log + "' 2>&1";
  outcome o;
  auto status = std::system(cmd.c_str());
  o.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in{log};
  std::stringstream ss;
  ss << in.rdbuf();
  o.out = ss.str();
  return o;
}

} // namespace

BOOST_AUTO_TEST_CASE(a_tiny_grid_writes_the_benchmark_shape) {
  scratch s;
  auto o = run(s.dir, "--workers 3,4 --tests 20 --strategies "
                      "round_robin,adaptive --output r.json --db-path h.db");
  BOOST_TEST_REQUIRE(o.rc == 0, o.out);
  std::ifstream in{s.dir + "/r.json"};
  auto j = nlohmann::json::parse(in);
  BOOST_TEST(j["type"] == "benchmark");
  BOOST_TEST(j["configuration"].is_object());
  BOOST_TEST(j["configuration"]["seed"] == 1);
  auto& results = j["results"];
  BOOST_REQUIRE(results.is_array());
  BOOST_TEST(results.size() == 4u);
  for (auto& r : results) {
    BOOST_TEST(r["workers"].is_number());
    BOOST_TEST(r["tests"] == 20);
    BOOST_TEST(r["strategy"].is_string());
    auto& m = r["metrics"];
    for (auto key :
         {"avg_throughput", "p50_latency", "p99_latency", "success_rate",
          "makespan", "lower_bound", "makespan_ratio", "worker_utilization",
          "utilization_stddev", "completed_tests"})
      BOOST_TEST(m.contains(key), key);
    BOOST_TEST(m["completed_tests"] == 20);
    BOOST_TEST(m["makespan"].get<double>() + 1e-9
               >= m["lower_bound"].get<double>());
  }
  // The table names every column the note asks for.
  for (auto col :
       {"tput/s", "p50", "p99", "makespan", "lower", "ratio", "util%", "sd"})
    BOOST_TEST(o.out.find(col) != std::string::npos, col);
  // The history was saved and is read back by the next run.
  auto again = run(s.dir, "--workers 3 --tests 20 --strategies adaptive "
                          "--output r2.json --db-path h.db");
  BOOST_TEST_REQUIRE(again.rc == 0, again.out);
  std::ifstream in2{s.dir + "/r2.json"};
  auto j2 = nlohmann::json::parse(in2);
  BOOST_TEST(j2["configuration"]["history_pairs_loaded"].get<int>() > 0);
}

BOOST_AUTO_TEST_CASE(the_same_seed_gives_the_same_results) {
  scratch s;
  auto a = run(s.dir, "--workers 4 --tests 30 --strategies adaptive,composite "
                      "--no-db --output a.json");
  auto b = run(s.dir, "--workers 4 --tests 30 --strategies adaptive,composite "
                      "--no-db --output b.json");
  BOOST_TEST_REQUIRE(a.rc == 0, a.out);
  BOOST_TEST_REQUIRE(b.rc == 0, b.out);
  std::ifstream ia{s.dir + "/a.json"}, ib{s.dir + "/b.json"};
  auto ja = nlohmann::json::parse(ia);
  auto jb = nlohmann::json::parse(ib);
  // One result per strategy in each, or the comparison below proves nothing.
  BOOST_TEST_REQUIRE(ja["results"].size() == 2u);
  BOOST_TEST_REQUIRE(jb["results"].size() == 2u);
  for (size_t i = 0; i < ja["results"].size(); ++i)
    BOOST_TEST(ja["results"][i]["metrics"]["makespan"]
               == jb["results"][i]["metrics"]["makespan"]);
}

BOOST_AUTO_TEST_CASE(an_unknown_strategy_is_refused_listing_the_valid_ones) {
  scratch s;
  auto o = run(s.dir, "--workers 3 --tests 10 --strategies fastest --no-db");
  BOOST_TEST(o.rc == 2);
  BOOST_TEST(o.out.find("fastest") != std::string::npos, o.out);
  BOOST_TEST(o.out.find("performance_based") != std::string::npos, o.out);
}

BOOST_AUTO_TEST_CASE(a_corrupt_database_is_refused_naming_the_file) {
  scratch s;
  {
    std::ofstream out{s.dir + "/bad.db"};
    out << "garbage garbage garbage garbage garbage garbage garbage\n";
  }
  auto o = run(s.dir, "--workers 3 --tests 10 --strategies adaptive "
                      "--db-path bad.db --output r.json");
  BOOST_TEST(o.rc == 2);
  BOOST_TEST(o.out.find("bad.db") != std::string::npos, o.out);
  BOOST_TEST(o.out.find("not a database") != std::string::npos, o.out);
  // The file is left as it was.
  std::ifstream in{s.dir + "/bad.db"};
  std::string first;
  std::getline(in, first);
  BOOST_TEST(first.rfind("garbage", 0) == 0u);
}

BOOST_AUTO_TEST_CASE(no_strategy_ever_beats_the_lower_bound) {
  // Property: the real pipeline (scheduler, simulated workers, submitter on
  // the virtual clock) never finishes below the bound, for every strategy,
  // several seeds, all at once and released over time, on the shipped
  // heterogeneous workload.
  config cfg;
  merge_config_file(cfg, std::string{ALB_SOURCE_DIR}
                           + "/configs/benchmark_workload.toml");
  size_t runs = 0;
  double closest = 1e9;
  for (uint64_t seed = 1; seed <= 3; ++seed)
    for (double duration : {0.0, 4.0})
      for (auto& s : strategy_names()) {
        simulation_options o;
        o.type = "benchmark";
        o.workers = 6;
        o.tests = 40;
        o.duration = duration;
        o.seed = seed;
        o.deterministic = true;
        o.workers_profile = cfg.worker_profiles.at("benchmark");
        o.tests_profile = cfg.test_profiles.at("benchmark");
        o.scheduler = cfg.scheduler;
        o.scheduler.strategy = s;
        o.scheduler.seed = seed;
        auto inst = draw_instance(o);
        BOOST_TEST_REQUIRE(inst.tests.size() == 40u);
        auto bound = bound_of(inst.workers, inst.tests, 0.8).total;
        // The bound that knows every draw of the run is tighter and holds
        // as well.
        auto real = realized_instance(o);
        auto tight = bound_of(real.workers, real.tests, 1.0).total;
        BOOST_TEST(tight >= bound);
        auto r = run_simulation(o);
        auto& m = r.document["metrics"];
        BOOST_TEST_REQUIRE(m["completed_tests"] == 40);
        auto makespan = m["makespan"].get<double>();
        BOOST_TEST(makespan + 1e-9 >= bound,
                   s << " seed " << seed << " duration " << duration
                     << ": makespan " << makespan << " < bound " << bound);
        BOOST_TEST(makespan + 1e-6 >= tight,
                   s << " seed " << seed << " duration " << duration
                     << ": makespan " << makespan << " < bound " << tight);
        closest = std::min(closest, makespan / tight);
        ++runs;
      }
  BOOST_TEST(runs == 6 * strategy_names().size());
  // Not a bound so low that it says nothing.
  BOOST_TEST(closest < 1.3);
}

BOOST_AUTO_TEST_CASE(every_strategy_runs_the_same_draws) {
  // Found: simulated workers drew the jitter from their own sequences, so
  // a test's duration depended on where and in which order it ran, every
  // strategy faced other draws and no bound could know them. Now each test
  // runs exactly its realized work on whatever worker takes it.
  config cfg;
  merge_config_file(cfg, std::string{ALB_SOURCE_DIR}
                           + "/configs/benchmark_workload.toml");
  simulation_options o;
  o.type = "benchmark";
  o.workers = 5;
  o.tests = 60;
  o.seed = 3;
  o.deterministic = true;
  o.workers_profile = cfg.worker_profiles.at("benchmark");
  o.tests_profile = cfg.test_profiles.at("benchmark");
  o.scheduler = cfg.scheduler;
  auto real = realized_instance(o);
  std::map<std::string, double> speed, work;
  for (auto& w : real.workers)
    speed[w.worker_id] = w.speed;
  for (auto& [at, t] : real.tests)
    work[t.test_id] = t.expected_duration;
  for (auto s : {"round_robin", "adaptive"}) {
    o.scheduler.strategy = s;
    size_t seen = 0;
    o.on_end = [&](const assignment& a) {
      ++seen;
      BOOST_TEST(a.execution_time * speed.at(a.worker_id) == work.at(a.test_id),
                 boost::test_tools::tolerance(1e-9));
    };
    auto r = run_simulation(o);
    BOOST_TEST(seen == 60u, s);
  }
}

BOOST_AUTO_TEST_CASE(seeds_give_median_and_worst_cold_and_warm_per_cell) {
  scratch s;
  auto o = run(s.dir, "--workers 3,4 --tests 20 --strategies "
                      "round_robin,adaptive --seeds 1-3 --no-db "
                      "--output r.json");
  BOOST_TEST_REQUIRE(o.rc == 0, o.out);
  std::ifstream in{s.dir + "/r.json"};
  auto j = nlohmann::json::parse(in);
  BOOST_TEST(j["configuration"]["seeds"].size() == 3u);
  // One summary row per cell and strategy, one run per seed besides.
  auto& summary = j["summary"];
  BOOST_TEST_REQUIRE(summary.size() == 4u);
  BOOST_TEST(j["runs"].size() == 12u);
  for (auto& row : summary) {
    BOOST_TEST(row["seeds"] == 3);
    for (auto side : {"cold", "warm"}) {
      auto& x = row[side];
      // The bound is honest: no median, let alone the worst, is below it.
      BOOST_TEST(x["ratio_median"].get<double>() >= 1.0 - 1e-6);
      BOOST_TEST(x["ratio_worst"].get<double>()
                 >= x["ratio_median"].get<double>());
      // The bound for any draw (jitter's lower end) is below the one that
      // knows the run's draws, so a ratio against it is larger.
      BOOST_TEST(x["any_draw_ratio_median"].get<double>()
                 >= x["ratio_median"].get<double>());
      // Turnaround includes the run: never below the wait.
      BOOST_TEST(x["turnaround_p50"].get<double>()
                 >= x["wait_p50"].get<double>());
      BOOST_TEST(x["turnaround_p99"].get<double>() > 0.0);
    }
  }
  // The worst over seeds is the largest of the runs' ratios.
  double worst = 0;
  for (auto& r : j["runs"])
    if (r["workers"] == 3 && r["strategy"] == "adaptive")
      worst = std::max(worst, r["cold"]["makespan_ratio"].get<double>());
  for (auto& row : summary)
    if (row["workers"] == 3 && row["strategy"] == "adaptive")
      BOOST_TEST(row["cold"]["ratio_worst"].get<double>() == worst);
  BOOST_TEST(j["verdict"]["warm"].contains("below_round_robin"));
  for (auto col : {"c.med", "c.wst", "w.med", "w.wst", "turn50", "wait99"})
    BOOST_TEST(o.out.find(col) != std::string::npos, col);
}

BOOST_AUTO_TEST_CASE(a_test_seed_draws_other_tests_for_the_same_fleet) {
  scratch s;
  auto a = run(s.dir, "--workers 4 --tests 30 --strategies round_robin "
                      "--no-db --output a.json");
  auto b = run(s.dir, "--workers 4 --tests 30 --strategies round_robin "
                      "--no-db --test-seed 99 --output b.json");
  BOOST_TEST_REQUIRE(a.rc == 0, a.out);
  BOOST_TEST_REQUIRE(b.rc == 0, b.out);
  std::ifstream ia{s.dir + "/a.json"}, ib{s.dir + "/b.json"};
  auto ja = nlohmann::json::parse(ia);
  auto jb = nlohmann::json::parse(ib);
  BOOST_TEST_REQUIRE(ja["results"].size() == 1u);
  BOOST_TEST_REQUIRE(jb["results"].size() == 1u);
  BOOST_TEST(ja["results"][0]["metrics"]["makespan"]
             != jb["results"][0]["metrics"]["makespan"]);
  // The fleet is the same: the instances drawn agree on every worker.
  simulation_options o;
  o.workers = 4;
  o.tests = 30;
  o.duration = 0;
  auto x = draw_instance(o);
  o.test_seed = 99;
  auto y = draw_instance(o);
  BOOST_TEST_REQUIRE(x.workers.size() == 4u);
  for (size_t i = 0; i < 4; ++i) {
    BOOST_TEST(x.workers[i].speed == y.workers[i].speed);
    BOOST_TEST(x.workers[i].available_memory == y.workers[i].available_memory);
  }
  BOOST_TEST(x.tests.size() == y.tests.size());
  bool differ = false;
  for (size_t i = 0; i < x.tests.size(); ++i)
    differ = differ || x.tests[i].second.model_id != y.tests[i].second.model_id
             || x.tests[i].second.expected_duration
                  != y.tests[i].second.expected_duration;
  BOOST_TEST(differ);
}

BOOST_AUTO_TEST_CASE(
  noisy_estimates_change_the_runs_and_keep_the_bound_honest) {
  scratch s;
  auto exact = run(s.dir, "--workers 4,8 --tests 40 --strategies "
                          "least_loaded,adaptive --seeds 1-2 --no-db "
                          "--output a.json");
  auto noisy = run(s.dir, "--workers 4,8 --tests 40 --strategies "
                          "least_loaded,adaptive --seeds 1-2 --no-db "
                          "--duration-noise 0.7 --output b.json");
  BOOST_TEST_REQUIRE(exact.rc == 0, exact.out);
  BOOST_TEST_REQUIRE(noisy.rc == 0, noisy.out);
  std::ifstream ia{s.dir + "/a.json"}, ib{s.dir + "/b.json"};
  auto ja = nlohmann::json::parse(ia);
  auto jb = nlohmann::json::parse(ib);
  BOOST_TEST(jb["configuration"]["duration_noise"] == 0.7);
  BOOST_TEST_REQUIRE(ja["runs"].size() == 8u);
  BOOST_TEST_REQUIRE(jb["runs"].size() == 8u);
  size_t changed = 0;
  for (size_t i = 0; i < 8; ++i) {
    // The bound knows the run's draws and can be met exactly (one long
    // test on the fastest slot); the virtual clock keeps nanoseconds.
    for (auto side : {"cold", "warm"})
      BOOST_TEST(jb["runs"][i][side]["makespan_ratio"].get<double>()
                 >= 1.0 - 1e-6);
    if (ja["runs"][i]["cold"]["makespan"] != jb["runs"][i]["cold"]["makespan"])
      ++changed;
  }
  BOOST_TEST(changed == 8u);
  // A malformed seed list is refused with one line naming it.
  auto bad = run(s.dir, "--workers 3 --tests 10 --seeds 5-2 --no-db");
  BOOST_TEST(bad.rc == 2);
  BOOST_TEST(bad.out.find("--seeds '5-2'") != std::string::npos, bad.out);
}

BOOST_AUTO_TEST_CASE(noise_factors_are_a_mean_one_lognormal_per_test) {
  double sum = 0, logsum = 0, logsq = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    auto id = "t" + std::to_string(i);
    auto f = duration_noise_factor(id, 7, 0.5);
    BOOST_TEST_REQUIRE(f > 0.0);
    // A pure function of (id, seed): the same test keeps its factor.
    BOOST_TEST_REQUIRE(f == duration_noise_factor(id, 7, 0.5));
    sum += f;
    logsum += std::log(f);
    logsq += std::log(f) * std::log(f);
  }
  auto mean = sum / n;
  auto sd = std::sqrt(logsq / n - (logsum / n) * (logsum / n));
  BOOST_TEST(std::abs(mean - 1.0) < 0.02, mean);
  BOOST_TEST(std::abs(sd - 0.5) < 0.02, sd);
  BOOST_TEST(duration_noise_factor("t1", 7, 0) == 1.0);
  BOOST_TEST(duration_noise_factor("t1", 7, 0.5)
             != duration_noise_factor("t1", 8, 0.5));
}
