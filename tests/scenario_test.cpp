#define BOOST_TEST_MODULE scenario
#include <boost/test/unit_test.hpp>

// `alb scenarios`, `alb scenario NAME` and `alb spike`, run as the built
// binary: every shipped scenario shows the property its description states,
// bad input is refused with exit status 2, and spike results carry the spike
// fields. Runs use --deterministic (virtual time) unless timing is the point.

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

extern char** environ;

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::string data_dir = ALB_SOURCE_DIR "/tests/data/scenario/";

const std::vector<std::string> shipped = {
  "normal_operation",   "high_priority_burst", "resource_contention",
  "worker_churn",       "spike_and_recovery",  "heterogeneous_hardware",
  "gpu_scarcity",       "long_tail_durations", "mass_worker_failure",
  "priority_inversion",
};

/// A fresh directory, removed with everything in it at the end.
struct temp_dir {
  fs::path path;
  temp_dir() {
    auto base = fs::temp_directory_path()
                / ("alb-scenario-test-" + std::to_string(::getpid()) + "-"
                   + std::to_string(counter()++));
    fs::create_directories(base);
    path = base;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  static int& counter() {
    static int n = 0;
    return n;
  }
};

/// What a finished `alb` process left behind.
struct run_result {
  /// Exit status; -1 when killed by a signal or the timeout.
  int status = -1;
  /// stdout and stderr, interleaved.
  std::string output;
  /// Wall-clock seconds it took.
  double seconds = 0;
};

/// Runs ALB_BINARY with `args` in an environment without any LB_* variable
/// (so the caller's shell cannot change the outcome) plus `env`; kills it
/// after `timeout` seconds.
run_result run_alb(const std::vector<std::string>& args,
                   const std::map<std::string, std::string>& env = {},
                   double timeout = 120) {
  temp_dir tmp;
  auto log = (tmp.path / "output.log").string();
  std::vector<std::string> envs;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    if (kv.rfind("LB_", 0) == 0 || kv.rfind("ALB_SCENARIOS_PATH=", 0) == 0)
      continue;
    envs.push_back(kv);
  }
  envs.push_back("ALB_SCENARIOS_PATH=" ALB_SOURCE_DIR
                 "/configs/scenarios.toml");
  for (auto& [k, v] : env)
    envs.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& kv : envs)
    envp.push_back(kv.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_s{ALB_BINARY};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s)
    argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, log.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
  posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  pid_t pid = 0;
  auto start = std::chrono::steady_clock::now();
  int rc
    = posix_spawn(&pid, ALB_BINARY, &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  run_result r;
  if (rc != 0) {
    r.output = "posix_spawn failed";
    return r;
  }
  int status = 0;
  for (;;) {
    auto done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid)
      break;
    auto elapsed
      = std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
    if (elapsed > timeout) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      r.output = "timed out after " + std::to_string(timeout) + " s\n";
      status = -1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  r.seconds
    = std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
        .count();
  if (status != -1 && WIFEXITED(status))
    r.status = WEXITSTATUS(status);
  std::ifstream in{log};
  std::stringstream ss;
  ss << in.rdbuf();
  r.output += ss.str();
  return r;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

json read_json(const fs::path& file) {
  std::ifstream in{file};
  return json::parse(in);
}

/// Runs scenario `name` on virtual time and returns its result document.
json run_scenario(const std::string& name,
                  std::vector<std::string> extra = {}) {
  temp_dir tmp;
  auto out = tmp.path / (name + ".json");
  std::vector<std::string> args{"scenario", name,       "--deterministic",
                                "--quiet",  "--output", out.string()};
  args.insert(args.end(), extra.begin(), extra.end());
  auto r = run_alb(args);
  BOOST_TEST_REQUIRE(r.status == 0, name << " failed:\n" << r.output);
  auto doc = read_json(out);
  BOOST_TEST_MESSAGE(name << ": " << r.seconds << " s");
  return doc;
}

const json& metrics(const json& doc) {
  return doc.at("metrics");
}

double prio(const json& doc, int p, const char* key) {
  return metrics(doc)
    .at("latency_by_priority")
    .at(std::to_string(p))
    .at(key)
    .get<double>();
}

/// Every test ended exactly once: none pending, none lost.
void check_nothing_lost(const json& doc) {
  auto& m = metrics(doc);
  auto total = m.at("total_tests").get<uint64_t>();
  BOOST_TEST(total == doc.at("configuration").at("tests").get<uint64_t>());
  BOOST_TEST(m.at("completed_tests").get<uint64_t>()
               + m.at("failed_tests").get<uint64_t>()
               + m.at("cancelled_tests").get<uint64_t>()
             == total);
  BOOST_TEST(m.at("pending_tests").get<uint64_t>() == 0u);
}

void check_not_oversubscribed(const json& doc) {
  BOOST_TEST(metrics(doc).at("max_memory_reservation").get<double>() <= 1.0);
  BOOST_TEST(metrics(doc).at("max_accelerator_reservation").get<double>()
             <= 1.0);
}

void check_all_complete(const json& doc) {
  BOOST_TEST(metrics(doc).at("success_rate").get<double>() == 100.0);
  BOOST_TEST(metrics(doc).at("completed_tests").get<uint64_t>()
             == metrics(doc).at("total_tests").get<uint64_t>());
}

/// The command's own judgement of the scenario's properties held too.
void check_self_judgement(const json& doc) {
  BOOST_TEST_REQUIRE(doc.contains("scenario_checks"));
  // The two every scenario has, and at least one of its own.
  BOOST_TEST(doc.at("scenario_checks").size() > 2u);
  for (auto& c : doc.at("scenario_checks"))
    BOOST_TEST(c.at("passed").get<bool>(), c.dump());
}

void check_identity(const json& doc, const std::string& name) {
  BOOST_TEST(doc.at("type").get<std::string>() == "scenario");
  auto& c = doc.at("configuration");
  BOOST_TEST(c.at("scenario").get<std::string>() == name);
  BOOST_TEST(!c.at("description").get<std::string>().empty());
  BOOST_TEST(doc.at("time_series").contains("throughput"));
  BOOST_TEST(doc.at("time_series").contains("queue_depth"));
}

} // namespace

// -- alb scenarios ------------------------------------------------------------

BOOST_AUTO_TEST_CASE(scenarios_lists_the_ten_shipped_with_descriptions) {
  auto r = run_alb({"scenarios"});
  BOOST_TEST_REQUIRE(r.status == 0, r.output);
  for (auto& name : shipped)
    BOOST_TEST(contains(r.output, "\n" + name + "\n"), name);
  BOOST_TEST(
    contains(r.output, "Normal operation with steady test submission"));
  BOOST_TEST(contains(r.output, "expect: "));
}

BOOST_AUTO_TEST_CASE(scenarios_includes_those_of_the_config_file) {
  auto r = run_alb({"scenarios", "--config", data_dir + "extra_scenario.toml"});
  BOOST_TEST_REQUIRE(r.status == 0, r.output);
  BOOST_TEST(contains(r.output, "tiny_custom"));
  BOOST_TEST(contains(r.output, "worker_churn"));
  // LB_CONFIG_PATH stands in for --config.
  auto e = run_alb({"scenarios"},
                   {{"LB_CONFIG_PATH", data_dir + "extra_scenario.toml"}});
  BOOST_TEST(e.status == 0);
  BOOST_TEST(contains(e.output, "tiny_custom"));
}

// -- bad input ----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(unknown_scenario_lists_the_valid_names) {
  temp_dir tmp;
  auto out = tmp.path / "x.json";
  auto r = run_alb({"scenario", "worker_chrun", "--output", out.string()});
  BOOST_TEST(r.status == 2, r.output);
  BOOST_TEST(contains(r.output, "unknown scenario 'worker_chrun'"));
  BOOST_TEST(contains(r.output, "did you mean 'worker_churn'"));
  for (auto& name : shipped)
    BOOST_TEST(contains(r.output, name), name);
  BOOST_TEST(!fs::exists(out));
}

BOOST_AUTO_TEST_CASE(scenario_with_missing_profile_names_both) {
  temp_dir tmp;
  auto out = tmp.path / "x.json";
  auto r
    = run_alb({"scenario", "needs_monsters", "--config",
               data_dir + "missing_profile.toml", "--output", out.string()});
  BOOST_TEST(r.status == 2, r.output);
  BOOST_TEST(contains(r.output, "needs_monsters"));
  BOOST_TEST(contains(r.output, "gpu_monster"));
  BOOST_TEST(!fs::exists(out));
}

BOOST_AUTO_TEST_CASE(max_workers_exceeded_is_refused) {
  temp_dir tmp;
  auto out = tmp.path / "x.json";
  // normal_operation starts 30 workers; worker_churn peaks above its 30.
  for (auto name : {"normal_operation", "worker_churn"}) {
    auto r = run_alb({"scenario", name, "--output", out.string()},
                     {{"LB_MAX_WORKERS", "10"}});
    BOOST_TEST(r.status == 2, r.output);
    BOOST_TEST(contains(r.output, "LB_MAX_WORKERS"), r.output);
    BOOST_TEST(contains(r.output, name), r.output);
  }
  auto s = run_alb({"spike", "--workers", "30", "--output", out.string()},
                   {{"LB_MAX_WORKERS", "10"}});
  BOOST_TEST(s.status == 2, s.output);
  BOOST_TEST(contains(s.output, "LB_MAX_WORKERS"), s.output);
  BOOST_TEST(!fs::exists(out));
}

BOOST_AUTO_TEST_CASE(max_workers_caps_random_churn_too) {
  // worker_churn's script peaks at 37 and its random churn adds more: 39 on
  // the landed main with LB_MAX_WORKERS=37.
  for (auto mode : {"--deterministic", "--time-scale=4"}) {
    temp_dir tmp;
    auto out = tmp.path / "churn.json";
    auto r = run_alb(
      {"scenario", "worker_churn", mode, "--quiet", "--output", out.string()},
      {{"LB_MAX_WORKERS", "37"}});
    BOOST_TEST_REQUIRE(r.status == 0, r.output);
    auto doc = read_json(out);
    auto& m = metrics(doc);
    BOOST_TEST(m.at("peak_worker_count").get<uint64_t>() <= 37u, mode);
    BOOST_TEST(m.at("peak_worker_count").get<uint64_t>() >= 30u, mode);
    double most = 0;
    for (auto& p : doc.at("time_series").at("workers"))
      most = std::max(most, p.at(1).get<double>());
    BOOST_TEST(most <= 37.0, mode);
    BOOST_TEST(doc.at("configuration").at("max_workers").get<int>() == 37);
    check_nothing_lost(doc);
  }
  // Without a cap the same run passes 37: the cap is what holds it.
  temp_dir tmp;
  auto out = tmp.path / "free.json";
  auto r = run_alb({"scenario", "worker_churn", "--deterministic", "--quiet",
                    "--output", out.string()});
  BOOST_TEST_REQUIRE(r.status == 0, r.output);
  BOOST_TEST(metrics(read_json(out)).at("peak_worker_count").get<uint64_t>()
             > 37u);
}

BOOST_AUTO_TEST_CASE(missing_or_directory_config_is_refused) {
  temp_dir tmp;
  auto out = tmp.path / "x.json";
  auto missing = (tmp.path / "nope.toml").string();
  for (auto& cmd : std::vector<std::vector<std::string>>{
         {"scenario", "normal_operation", "--config", missing, "--output",
          out.string()},
         {"scenario", "normal_operation", "--config", tmp.path.string(),
          "--output", out.string()},
         {"scenarios", "--config", missing},
         {"spike", "--config", tmp.path.string(), "--output", out.string()},
       }) {
    auto r = run_alb(cmd);
    BOOST_TEST(r.status == 2, r.output);
    BOOST_TEST(contains(r.output, "error"), r.output);
  }
  auto env
    = run_alb({"scenario", "normal_operation"}, {{"LB_CONFIG_PATH", missing}});
  BOOST_TEST(env.status == 2, env.output);
  BOOST_TEST(!fs::exists(out));
}

BOOST_AUTO_TEST_CASE(bad_flags_are_usage_errors) {
  BOOST_TEST(run_alb({"scenario"}).status == 2);
  BOOST_TEST(
    run_alb({"scenario", "normal_operation", "--strategy", "nope"}).status
    == 2);
  BOOST_TEST(run_alb({"spike", "--spike-size", "-1"}).status == 2);
  BOOST_TEST(run_alb({"spike", "--workers", "0"}).status == 2);
}

// -- each scenario shows its property -----------------------------------------

BOOST_AUTO_TEST_CASE(normal_operation_completes_everything) {
  auto doc = run_scenario("normal_operation");
  check_identity(doc, "normal_operation");
  check_nothing_lost(doc);
  check_all_complete(doc);
  BOOST_TEST(metrics(doc).at("retried_tests").get<uint64_t>() == 0u);
  check_self_judgement(doc);
}

BOOST_AUTO_TEST_CASE(high_priority_burst_keeps_priority_one_fast) {
  auto doc = run_scenario("high_priority_burst");
  check_identity(doc, "high_priority_burst");
  check_nothing_lost(doc);
  // The burst's 100 tests are in the total.
  BOOST_TEST(metrics(doc).at("total_tests").get<uint64_t>() == 600u);
  auto p1 = prio(doc, 1, "p99_latency");
  BOOST_TEST(p1 <= metrics(doc).at("p99_latency").get<double>());
  BOOST_TEST(p1 < prio(doc, 5, "p99_latency"));
  BOOST_TEST(prio(doc, 1, "avg_latency") < prio(doc, 5, "avg_latency"));
  check_self_judgement(doc);
}

BOOST_AUTO_TEST_CASE(resource_contention_never_oversubscribes) {
  auto doc = run_scenario("resource_contention");
  check_identity(doc, "resource_contention");
  check_nothing_lost(doc);
  check_not_oversubscribed(doc);
  check_all_complete(doc);
  BOOST_TEST(doc.at("configuration").at("strategy").get<std::string>()
             == "best_fit");
  // Memory really was the limit: some worker was filled to the brim.
  BOOST_TEST(metrics(doc).at("max_memory_reservation").get<double>() > 0.7);
  check_self_judgement(doc);
}

BOOST_AUTO_TEST_CASE(worker_churn_loses_no_test) {
  auto doc = run_scenario("worker_churn");
  check_identity(doc, "worker_churn");
  check_nothing_lost(doc);
  check_all_complete(doc);
  BOOST_TEST(metrics(doc).at("requeued_tests").get<uint64_t>() > 0u);
  check_self_judgement(doc);
}

BOOST_AUTO_TEST_CASE(mass_worker_failure_loses_no_test) {
  auto doc = run_scenario("mass_worker_failure");
  check_identity(doc, "mass_worker_failure");
  check_nothing_lost(doc);
  check_all_complete(doc);
  BOOST_TEST(metrics(doc).at("requeued_tests").get<uint64_t>() > 0u);
  // 15 of 30 crashed and 15 joined.
  BOOST_TEST(metrics(doc).at("final_worker_count").get<uint64_t>() == 30u);
  check_self_judgement(doc);
}

BOOST_AUTO_TEST_CASE(spike_and_recovery_queue_rises_and_drains) {
  auto doc = run_scenario("spike_and_recovery");
  check_identity(doc, "spike_and_recovery");
  check_nothing_lost(doc);
  auto duration = doc.at("configuration").at("duration").get<double>();
  auto spike_at = 0.3 * duration;
  double before = 0, during = 0;
  for (auto& p : doc.at("time_series").at("queue_depth")) {
    auto t = p.at(0).get<double>();
    auto q = p.at(1).get<double>();
    if (t < spike_at - 0.5)
      before = std::max(before, q);
    else if (t < spike_at + 0.3 * duration)
      during = std::max(during, q);
  }
  BOOST_TEST(during > before);
  BOOST_TEST(during >= 10.0);
  auto& last = doc.at("time_series").at("queue_depth").back();
  BOOST_TEST(last.at(1).get<double>() <= 0.5);
  check_self_judgement(doc);
}

BOOST_AUTO_TEST_CASE(heterogeneous_hardware_keeps_utilization_spread_low) {
  auto doc = run_scenario("heterogeneous_hardware");
  check_identity(doc, "heterogeneous_hardware");
  check_nothing_lost(doc);
  check_all_complete(doc);
  check_not_oversubscribed(doc);
  // A fraction like worker_utilization, and below the scenario's bound.
  auto sd = metrics(doc).at("utilization_stddev").get<double>();
  BOOST_TEST(sd >= 0.0);
  BOOST_TEST(sd <= 0.3);
  BOOST_TEST(metrics(doc).at("worker_utilization").get<double>() > 0.0);
  BOOST_TEST(metrics(doc).at("worker_utilization").get<double>() <= 1.0);
  check_self_judgement(doc);
}

BOOST_AUTO_TEST_CASE(
  gpu_scarcity_completes_gpu_tests_without_oversubscription) {
  auto doc = run_scenario("gpu_scarcity");
  check_identity(doc, "gpu_scarcity");
  check_nothing_lost(doc);
  check_all_complete(doc);
  BOOST_TEST(metrics(doc).at("unplaceable_tests").get<uint64_t>() == 0u);
  BOOST_TEST(metrics(doc).at("max_accelerator_reservation").get<double>()
             <= 1.0);
  check_self_judgement(doc);
}

BOOST_AUTO_TEST_CASE(long_tail_durations_end_shortly_after_the_longest) {
  auto doc = run_scenario("long_tail_durations");
  check_identity(doc, "long_tail_durations");
  check_nothing_lost(doc);
  check_all_complete(doc);
  // 8 s window + a 3 s straggler (+20% jitter) + slack.
  BOOST_TEST(metrics(doc).at("makespan").get<double>() <= 12.5);
  BOOST_TEST(metrics(doc).at("makespan").get<double>() >= 8.0);
  check_self_judgement(doc);
}

// -- checks that can fail -----------------------------------------------------

/// Runs `args` (a scenario on virtual time) expecting its checks to fail.
json run_failing(std::vector<std::string> args, const std::string& check) {
  temp_dir tmp;
  auto out = tmp.path / "broken.json";
  args.insert(args.end(),
              {"--deterministic", "--quiet", "--output", out.string()});
  auto r = run_alb(args);
  BOOST_TEST(r.status == 1, r.output);
  BOOST_TEST(contains(r.output, "[NOT MET] " + check), r.output);
  BOOST_TEST(contains(r.output, "expectations NOT MET"), r.output);
  auto doc = read_json(out);
  bool found = false;
  for (auto& c : doc.at("scenario_checks"))
    if (c.at("check").get<std::string>() == check) {
      found = true;
      BOOST_TEST(!c.at("passed").get<bool>());
      BOOST_TEST(c.contains("measured"));
    }
  BOOST_TEST(found, check);
  return doc;
}

BOOST_AUTO_TEST_CASE(a_strategy_that_piles_tests_up_is_not_even) {
  // best_fit packs tests onto the fullest workers: the opposite of spread.
  auto doc
    = run_failing({"scenario", "normal_operation", "--strategy", "best_fit"},
                  "assignments spread evenly");
  // The same promise holds with the scenario's own strategy (above).
  BOOST_TEST(metrics(doc).at("worker_assignment_stddev").get<double>()
             > 0.5 * metrics(doc).at("worker_assignment_mean").get<double>());
}

BOOST_AUTO_TEST_CASE(a_scheduler_without_priorities_fails_priority_checks) {
  run_failing({"scenario", "priority_inversion", "--config",
               data_dir + "no_priorities.toml"},
              "priority 1 waits less than priority 5 (mean)");
}

BOOST_AUTO_TEST_CASE(priority_inversion_favours_priority_one_and_ages) {
  auto doc = run_scenario("priority_inversion");
  check_identity(doc, "priority_inversion");
  check_nothing_lost(doc);
  BOOST_TEST(prio(doc, 1, "avg_latency") < prio(doc, 5, "avg_latency"));
  BOOST_TEST(prio(doc, 1, "p99_latency") < prio(doc, 5, "p99_latency"));
  // The profile draws only priorities 4 and 5 besides the burst's 1s, and
  // every one of them started.
  auto& by = metrics(doc).at("latency_by_priority");
  BOOST_TEST(by.at("1").at("count").get<uint64_t>() == 20u);
  BOOST_TEST(by.at("5").at("count").get<uint64_t>() > 0u);
  check_all_complete(doc);
  check_self_judgement(doc);
}

BOOST_AUTO_TEST_CASE(strategy_flag_overrides_the_scenario) {
  auto doc = run_scenario("resource_contention", {"--strategy", "round_robin"});
  BOOST_TEST(doc.at("configuration").at("strategy").get<std::string>()
             == "round_robin");
}

BOOST_AUTO_TEST_CASE(scenario_from_config_runs) {
  temp_dir tmp;
  auto out = tmp.path / "c.json";
  auto r = run_alb({"scenario", "tiny_custom", "--config",
                    data_dir + "extra_scenario.toml", "--deterministic",
                    "--quiet", "--output", out.string()});
  BOOST_TEST_REQUIRE(r.status == 0, r.output);
  auto doc = read_json(out);
  // small: 5 workers, 2 more at 50%.
  BOOST_TEST(metrics(doc).at("final_worker_count").get<uint64_t>() == 7u);
  check_nothing_lost(doc);
}

BOOST_AUTO_TEST_CASE(worker_churn_on_real_time_loses_no_test) {
  // The default mode: real threads and clocks, well under a minute.
  temp_dir tmp;
  auto out = tmp.path / "churn.json";
  auto r = run_alb(
    {"scenario", "worker_churn", "--quiet", "--output", out.string()}, {}, 60);
  BOOST_TEST_REQUIRE(r.status == 0, r.output);
  BOOST_TEST(r.seconds < 60);
  auto doc = read_json(out);
  check_nothing_lost(doc);
  check_all_complete(doc);
  BOOST_TEST(contains(r.output, "[ok] no test lost"));
  BOOST_TEST(!contains(r.output, "NOT MET"), r.output);
  check_self_judgement(doc);
}

// -- alb spike ----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(spike_writes_spikes_and_shows_them_in_the_series) {
  temp_dir tmp;
  auto out = tmp.path / "spike.json";
  auto r = run_alb({"spike", "--workers", "10", "--tests", "200", "--duration",
                    "20", "--spike-size", "1", "--deterministic", "--quiet",
                    "--output", out.string()});
  BOOST_TEST_REQUIRE(r.status == 0, r.output);
  BOOST_TEST(contains(r.output, "recovery"));
  auto doc = read_json(out);
  BOOST_TEST(doc.at("type").get<std::string>() == "spike");
  BOOST_TEST(doc.at("initial_workers").get<int>() == 10);
  BOOST_TEST(doc.at("final_workers").get<int>() == 10);
  BOOST_TEST(metrics(doc).at("initial_workers").get<int>() == 10);
  BOOST_TEST(metrics(doc).at("final_workers").get<int>() == 10);
  // --tests is the total: 50 base plus three spikes of 50.
  BOOST_TEST(metrics(doc).at("total_tests").get<uint64_t>() == 200u);
  BOOST_TEST(doc.at("configuration").at("tests").get<uint64_t>() == 200u);
  BOOST_TEST(doc.at("configuration").at("base_tests").get<uint64_t>() == 50u);
  check_nothing_lost(doc);
  auto& spikes = doc.at("spikes");
  BOOST_TEST_REQUIRE(spikes.size() == 3u);
  double expected_start[] = {5, 10, 15};
  for (size_t k = 0; k < 3; ++k) {
    auto& s = spikes[k];
    BOOST_TEST(s.at("start").get<double>() == expected_start[k]);
    BOOST_TEST(s.at("tests").get<uint64_t>() == 50u);
    BOOST_TEST(s.at("end").get<double>() > s.at("start").get<double>());
    // Recovered before the next spike.
    BOOST_TEST(s.at("end").get<double>() < expected_start[k] + 5);
  }
  // Throughput around each spike is far above the base load's before it.
  auto& tp = doc.at("time_series").at("throughput");
  double base = 0;
  for (auto& p : tp)
    if (p.at(0).get<double>() < 4.5)
      base = std::max(base, p.at(1).get<double>());
  for (auto start : expected_start) {
    double peak = 0;
    for (auto& p : tp) {
      auto t = p.at(0).get<double>();
      if (t >= start - 0.2 && t < start + 3)
        peak = std::max(peak, p.at(1).get<double>());
    }
    BOOST_TEST(peak > 3 * base,
               "spike at " << start << ": " << peak << " vs base " << base);
  }
}

BOOST_AUTO_TEST_CASE(spike_duration_comes_from_the_environment) {
  temp_dir tmp;
  auto out = tmp.path / "spike.json";
  auto r = run_alb({"spike", "--tests", "40", "--deterministic", "--quiet",
                    "--output", out.string()},
                   {{"LB_DEFAULT_DURATION", "8"}});
  BOOST_TEST_REQUIRE(r.status == 0, r.output);
  auto doc = read_json(out);
  BOOST_TEST(doc.at("configuration").at("duration").get<double>() == 8.0);
  BOOST_TEST(doc.at("configuration").at("workers").get<int>() == 20);
  BOOST_TEST(doc.at("spikes").at(0).at("start").get<double>() == 2.0);
}
