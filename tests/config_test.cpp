#define BOOST_TEST_MODULE config
#include <boost/test/unit_test.hpp>

#include "runtime/config.hpp"

#include <filesystem>
#include <map>
#include <string>
#include <vector>

using namespace alb;

namespace {

const std::string data_dir = ALB_SOURCE_DIR "/tests/data/config/";
const std::string configs_dir = ALB_SOURCE_DIR "/configs/";

std::string fixture(const std::string& name) {
  return data_dir + name;
}

/// An environment made of a fixed map, so tests never touch the process's.
env_lookup fake_env(std::map<std::string, std::string> vars) {
  return
    [vars = std::move(vars)](const char* name) -> std::optional<std::string> {
      auto i = vars.find(name);
      if (i == vars.end())
        return std::nullopt;
      return i->second;
    };
}

env_lookup env_with_scenarios(std::map<std::string, std::string> vars = {}) {
  vars.emplace("ALB_SCENARIOS_PATH", configs_dir + "scenarios.toml");
  return fake_env(std::move(vars));
}

/// Loads `file` and returns the error message; fails the test if it loads.
std::string error_of(const std::string& file) {
  try {
    load_config(file);
  } catch (const config_error& e) {
    return e.what();
  }
  BOOST_FAIL("loading " << file << " should have failed");
  return {};
}

void check_contains(const std::string& msg,
                    const std::vector<std::string>& parts) {
  for (auto& part : parts)
    BOOST_TEST(msg.find(part) != std::string::npos,
               "message \"" << msg << "\" lacks \"" << part << "\"");
  BOOST_TEST(msg.find('\n') == std::string::npos, "not one line: " << msg);
}

// -- field-by-field comparison ------------------------------------------------

void check_equal(const test_configuration& a, const test_configuration& b) {
  BOOST_TEST(a.workers == b.workers);
  BOOST_TEST(a.tests == b.tests);
  BOOST_TEST(a.duration == b.duration);
  BOOST_TEST(a.description == b.description);
}

void check_equal(const worker_profile& a, const worker_profile& b) {
  BOOST_TEST(a.memory_distribution == b.memory_distribution);
  BOOST_TEST(a.cuda_distribution == b.cuda_distribution);
  BOOST_TEST(a.cores_distribution == b.cores_distribution);
  BOOST_TEST(a.speed_distribution == b.speed_distribution);
  BOOST_TEST(a.failure_rate == b.failure_rate);
  BOOST_TEST(a.warmup_seconds == b.warmup_seconds);
  BOOST_TEST(a.warmup_performance == b.warmup_performance);
  BOOST_TEST(a.cooldown_seconds == b.cooldown_seconds);
  BOOST_TEST(a.background_load == b.background_load);
  BOOST_TEST(a.description == b.description);
}

void check_equal(const test_profile& a, const test_profile& b) {
  BOOST_TEST(a.memory_requirements == b.memory_requirements);
  BOOST_TEST(a.cuda_requirements == b.cuda_requirements);
  BOOST_TEST(a.priority_distribution == b.priority_distribution);
  BOOST_TEST(a.duration_distribution == b.duration_distribution);
  BOOST_TEST(a.model_ids == b.model_ids);
  BOOST_TEST(a.retries == b.retries);
  BOOST_TEST(a.description == b.description);
}

void check_equal(const scenario_event& a, const scenario_event& b) {
  BOOST_TEST(a.at == b.at);
  BOOST_TEST(to_string(a.action) == to_string(b.action));
  BOOST_TEST(a.fraction == b.fraction);
  BOOST_TEST(a.count == b.count);
  BOOST_TEST(a.tests == b.tests);
  BOOST_TEST(a.priority == b.priority);
}

void check_equal(const scenario_configuration& a,
                 const scenario_configuration& b) {
  BOOST_TEST(a.test_config == b.test_config);
  BOOST_TEST(a.worker_profile == b.worker_profile);
  BOOST_TEST(a.test_profile == b.test_profile);
  BOOST_TEST(a.burst_mode == b.burst_mode);
  BOOST_TEST(a.dynamic_workers == b.dynamic_workers);
  BOOST_TEST(a.strategy == b.strategy);
  BOOST_TEST(a.description == b.description);
  BOOST_TEST(a.expectation == b.expectation);
  BOOST_TEST_REQUIRE(a.events.size() == b.events.size());
  for (size_t i = 0; i < a.events.size(); ++i)
    check_equal(a.events[i], b.events[i]);
}

void check_equal(const test_spec& a, const test_spec& b) {
  auto& x = a.requirements;
  auto& y = b.requirements;
  BOOST_TEST(x.test_id == y.test_id);
  BOOST_TEST(x.model_id == y.model_id);
  BOOST_TEST(x.model_family == y.model_family);
  BOOST_TEST(x.test_type == y.test_type);
  BOOST_TEST(x.minimum_memory == y.minimum_memory);
  BOOST_TEST(x.required_backend == y.required_backend);
  BOOST_TEST(x.preferred_backend == y.preferred_backend);
  BOOST_TEST((x.required_accelerators == y.required_accelerators));
  BOOST_TEST(x.required_software == y.required_software);
  BOOST_TEST(x.expected_duration == y.expected_duration);
  BOOST_TEST(x.priority == y.priority);
  BOOST_TEST(x.timeout == y.timeout);
  BOOST_TEST(x.retries == y.retries);
  BOOST_TEST(x.concurrency_key == y.concurrency_key);
  BOOST_TEST(x.wait_limit == y.wait_limit);
  BOOST_TEST(a.command == b.command);
  BOOST_TEST((a.env == b.env));
  BOOST_TEST(a.cwd == b.cwd);
}

template<class Map>
void check_equal_maps(const Map& a, const Map& b) {
  BOOST_TEST_REQUIRE(a.size() == b.size());
  for (auto& [name, x] : a) {
    BOOST_TEST_CONTEXT("entry " << name) {
      auto i = b.find(name);
      BOOST_TEST_REQUIRE((i != b.end()));
      check_equal(x, i->second);
    }
  }
}

void check_equal(const config& a, const config& b) {
  check_equal_maps(a.test_configurations, b.test_configurations);
  check_equal_maps(a.worker_profiles, b.worker_profiles);
  check_equal_maps(a.test_profiles, b.test_profiles);
  check_equal_maps(a.scenario_configurations, b.scenario_configurations);
  BOOST_TEST(a.scheduler.strategy == b.scheduler.strategy);
  BOOST_TEST(a.scheduler.prefetch == b.scheduler.prefetch);
  BOOST_TEST(a.scheduler.wait_limit == b.scheduler.wait_limit);
  BOOST_TEST(a.scheduler.aging_interval == b.scheduler.aging_interval);
  BOOST_TEST(a.scheduler.tick_interval == b.scheduler.tick_interval);
  BOOST_TEST(a.scheduler.parked_scan_limit == b.scheduler.parked_scan_limit);
  BOOST_TEST(a.scheduler.seed == b.scheduler.seed);
  BOOST_TEST(a.metrics.port == b.metrics.port);
  BOOST_TEST(a.metrics.bind == b.metrics.bind);
  BOOST_TEST(a.metrics.linger == b.metrics.linger);
  BOOST_TEST(a.cluster.host == b.cluster.host);
  BOOST_TEST(a.cluster.port == b.cluster.port);
  BOOST_TEST(a.cluster.token_file == b.cluster.token_file);
  BOOST_TEST(a.cluster.db_path == b.cluster.db_path);
  BOOST_TEST(a.cluster.node_timeout == b.cluster.node_timeout);
  BOOST_TEST(a.cluster.timeout_grace == b.cluster.timeout_grace);
  BOOST_TEST(a.cluster.client_timeout == b.cluster.client_timeout);
  BOOST_TEST(a.cluster.handshake_timeout == b.cluster.handshake_timeout);
  BOOST_TEST(a.cluster.max_handshakes_per_address
             == b.cluster.max_handshakes_per_address);
  BOOST_TEST(a.cluster.max_handshakes == b.cluster.max_handshakes);
  BOOST_TEST(a.cluster.max_submission == b.cluster.max_submission);
  BOOST_TEST_REQUIRE(a.tests.size() == b.tests.size());
  for (size_t i = 0; i < a.tests.size(); ++i)
    check_equal(a.tests[i], b.tests[i]);
  BOOST_TEST(a.log_level == b.log_level);
  BOOST_TEST(a.max_workers == b.max_workers);
  BOOST_TEST(a.default_duration == b.default_duration);
  BOOST_TEST(a.warnings == b.warnings);
}

} // namespace

// -- defaults -----------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(defaults)

BOOST_AUTO_TEST_CASE(default_config_has_the_reference_entries) {
  auto cfg = default_config();
  auto& small = cfg.test_configurations.at("small");
  BOOST_TEST(small.workers == 5);
  BOOST_TEST(small.tests == 20);
  BOOST_TEST(small.duration == 10);
  auto& medium = cfg.test_configurations.at("medium");
  BOOST_TEST(medium.workers == 20);
  BOOST_TEST(medium.tests == 100);
  BOOST_TEST(medium.duration == 30);
  BOOST_TEST(cfg.test_configurations.count("large") == 1u);
  BOOST_TEST(cfg.worker_profiles.at("balanced").memory_distribution
             == (std::vector<double>{4, 8, 16, 32}));
  BOOST_TEST(cfg.worker_profiles.at("cpu_heavy").cuda_distribution
             == (std::vector<int>{0, 0, 0, 1}));
  BOOST_TEST(cfg.test_profiles.at("balanced").priority_distribution
             == (std::vector<int>{1, 2, 2, 3, 3, 3, 4, 4, 5}));
  BOOST_TEST(cfg.metrics.port == -1);
  BOOST_TEST(cfg.metrics.bind == "127.0.0.1");
  BOOST_TEST(cfg.cluster.port == 8080);
  BOOST_TEST(cfg.cluster.db_path == "alb.db");
  BOOST_TEST(cfg.cluster.node_timeout == 15.0);
  BOOST_TEST(cfg.cluster.handshake_timeout == 10.0);
  BOOST_TEST(cfg.cluster.max_handshakes_per_address == 16);
  BOOST_TEST(cfg.cluster.max_handshakes == 256);
  BOOST_TEST(cfg.cluster.max_submission == uint64_t{64} << 20);
  BOOST_TEST(cfg.log_level == "INFO");
  BOOST_TEST(cfg.scheduler.validate() == "");
  BOOST_CHECK_NO_THROW(validate(cfg));
}

BOOST_AUTO_TEST_CASE(reference_json_and_toml_give_the_same_configuration) {
  auto json = load_config(configs_dir + "reference_example.json");
  auto toml = load_config(configs_dir + "reference_example.toml");
  BOOST_TEST(json.warnings.empty());
  BOOST_TEST(toml.warnings.empty());
  check_equal(json, toml);
  // On an empty base, only what the files say is there, so the comparison
  // is about the files and not about the defaults they overlay.
  config empty_json, empty_toml;
  merge_config_file(empty_json, configs_dir + "reference_example.json");
  merge_config_file(empty_toml, configs_dir + "reference_example.toml");
  check_equal(empty_json, empty_toml);
  BOOST_TEST(empty_json.test_configurations.size() == 2u);
  BOOST_TEST(empty_json.test_configurations.at("medium").description
             == "Medium-scale test with moderate workers and tests");
  auto& s = empty_json.scenario_configurations.at("normal_operation");
  BOOST_TEST(s.test_config == "medium");
  BOOST_TEST(s.description == "Normal operation with steady test submission");
}

BOOST_AUTO_TEST_CASE(every_key_reads_the_same_from_toml_and_json) {
  auto toml = load_config(fixture("full.toml"));
  auto json = load_config(fixture("full.json"));
  check_equal(toml, json);
  BOOST_TEST(toml.warnings.empty());
  BOOST_TEST(toml.log_level == "DEBUG");
  BOOST_TEST(toml.max_workers == 64);
  BOOST_TEST(toml.default_duration == 12.5);
  BOOST_TEST(toml.scheduler.strategy == "power_of_two");
  BOOST_TEST(toml.scheduler.seed == 42u);
  BOOST_TEST(toml.metrics.port == 9464);
  BOOST_TEST(toml.cluster.token_file == "/etc/alb/token");
  BOOST_TEST(toml.cluster.node_timeout == 4.5);
  BOOST_TEST(toml.cluster.timeout_grace == 7.0);
  BOOST_TEST(toml.cluster.client_timeout == 9.0);
  BOOST_TEST(toml.cluster.handshake_timeout == 3.5);
  BOOST_TEST(toml.cluster.max_handshakes_per_address == 4);
  BOOST_TEST(toml.cluster.max_handshakes == 40);
  BOOST_TEST(toml.cluster.max_submission == uint64_t{8} << 20);
  auto& wp = toml.worker_profiles.at("custom");
  BOOST_TEST(wp.warmup_performance == 0.7);
  BOOST_TEST(wp.background_load == 20);
  auto& s = toml.scenario_configurations.at("custom");
  BOOST_TEST_REQUIRE(s.events.size() == 3u);
  // Events come back in time order, whatever the file order.
  BOOST_TEST(to_string(s.events[0].action) == "submit_burst");
  BOOST_TEST(s.events[0].tests == 50);
  BOOST_TEST(s.events[0].priority == 1);
  BOOST_TEST(to_string(s.events[1].action) == "add_workers");
  BOOST_TEST(to_string(s.events[2].action) == "kill_workers");
  BOOST_TEST(s.origin.find("full.toml:") != std::string::npos);
  BOOST_TEST_REQUIRE(toml.tests.size() == 2u);
  auto& t = toml.tests[0];
  BOOST_TEST(t.requirements.required_accelerators.at("cuda") == 1);
  BOOST_TEST(
    t.command
    == (std::vector<std::string>{"pytest", "-q", "tests/test_bert.py"}));
  BOOST_TEST(t.env.at("CUDA_VISIBLE_DEVICES") == "0");
  BOOST_TEST(toml.tests[1].requirements.priority == 3);
}

BOOST_AUTO_TEST_CASE(file_values_overlay_defaults_key_by_key) {
  auto cfg = load_config_from_string(
    "[test_configurations.small]\nworkers = 7\n", "overlay.toml");
  auto& small = cfg.test_configurations.at("small");
  BOOST_TEST(small.workers == 7);
  // Keys the file does not name keep their defaults.
  BOOST_TEST(small.tests == 20);
  BOOST_TEST(small.description
             == "Small-scale test with few workers and tests");
  BOOST_TEST(cfg.test_configurations.count("medium") == 1u);
  BOOST_TEST(cfg.sources == std::vector<std::string>{"overlay.toml"});
}

BOOST_AUTO_TEST_CASE(strict_priority_is_read_and_checked) {
  BOOST_TEST(scheduler_config{}.strict_priority);
  auto cfg = load_config_from_string("[scheduler]\nstrict_priority = false\n",
                                     "strict.toml");
  BOOST_TEST(!cfg.scheduler.strict_priority);
  try {
    load_config_from_string("[scheduler]\nstrict_priority = 1\n",
                            "strict.toml");
    BOOST_FAIL("a number must be rejected");
  } catch (const config_error& e) {
    std::string msg = e.what();
    BOOST_TEST(msg.find("strict.toml:2") != std::string::npos, msg);
    BOOST_TEST(msg.find("scheduler.strict_priority") != std::string::npos, msg);
  }
}

BOOST_AUTO_TEST_CASE(format_is_detected_by_content_without_extension) {
  auto json = load_config_from_string(
    " {\"test_configurations\": {\"small\": {\"workers\": 9}}}", "noext");
  BOOST_TEST(json.test_configurations.at("small").workers == 9);
  auto toml = load_config_from_string(
    "[test_configurations.small]\nworkers = 8", "noext");
  BOOST_TEST(toml.test_configurations.at("small").workers == 8);
}

BOOST_AUTO_TEST_CASE(a_failed_merge_leaves_the_config_untouched) {
  auto cfg = default_config();
  BOOST_CHECK_THROW(merge_config_string(cfg,
                                        "[test_configurations.small]\n"
                                        "workers = 9\ntests = -1\n",
                                        "half.toml"),
                    config_error);
  BOOST_TEST(cfg.test_configurations.at("small").workers == 5);
  BOOST_TEST(cfg.sources.empty());
}

BOOST_AUTO_TEST_SUITE_END()

// -- bad input ----------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(bad_input)

BOOST_AUTO_TEST_CASE(malformed_toml_names_file_line_and_column) {
  check_contains(error_of(fixture("malformed.toml")),
                 {"malformed.toml:2:", "expected"});
}

BOOST_AUTO_TEST_CASE(wrong_type_names_position_key_and_types) {
  check_contains(error_of(fixture("wrong_type.toml")),
                 {"wrong_type.toml:3:11: test_configurations.small.workers: "
                  "expected an integer, got a string"});
}

BOOST_AUTO_TEST_CASE(node_timeout_out_of_range_is_rejected) {
  for (auto bad : {"0", "0.05", "100000"}) {
    try {
      load_config_from_string(std::string{"[cluster]\nnode_timeout = "} + bad
                                + "\n",
                              "nt.toml", config_format::toml);
      BOOST_FAIL("node_timeout = " << bad << " should have failed");
    } catch (const config_error& e) {
      check_contains(e.what(), {"nt.toml:2:", "cluster.node_timeout"});
    }
  }
}

BOOST_AUTO_TEST_CASE(
  guard_keys_and_submission_limit_out_of_range_are_rejected) {
  // key = value, what the error must say besides file:line and the key.
  std::vector<std::pair<std::string, std::string>> bad = {
    {"handshake_timeout = 0", "positive"},
    {"handshake_timeout = 4000", "between 0.1 and 3600"},
    {"max_handshakes_per_address = 0", ""},
    {"max_handshakes = 100001", ""},
    {"max_handshakes = \"many\"", "integer"},
    {"max_submission = \"512K\"", "out of range"},
    {"max_submission = \"2GiB\"", "out of range"},
    {"max_submission = -5", "negative"},
    {"max_submission = \"lots\"", "is not a size"},
    {"timeout_grace = -1", ""},
    {"client_timeout = 0", ""},
  };
  for (auto& [line, what] : bad) {
    try {
      load_config_from_string("[cluster]\n" + line + "\n", "cl.toml",
                              config_format::toml);
      BOOST_FAIL(line << " should have failed");
    } catch (const config_error& e) {
      auto key = line.substr(0, line.find(' '));
      check_contains(e.what(), {"cl.toml:2:", "cluster." + key, what});
    }
  }
  auto ok = load_config_from_string(
    "[cluster]\nmax_submission = 2097152\nhandshake_timeout = 0.5\n", "cl.toml",
    config_format::toml);
  BOOST_TEST(ok.cluster.max_submission == uint64_t{2} << 20);
  BOOST_TEST(ok.cluster.handshake_timeout == 0.5);
}

BOOST_AUTO_TEST_CASE(negative_memory_is_rejected) {
  check_contains(error_of(fixture("negative_memory.toml")),
                 {"negative_memory.toml:2:27:",
                  "worker_profiles.tiny.memory_distribution[1]",
                  "must be positive, got -8"});
}

BOOST_AUTO_TEST_CASE(priority_zero_is_rejected) {
  check_contains(error_of(fixture("priority_zero.toml")),
                 {"priority_zero.toml:2:29:",
                  "test_profiles.urgent.priority_distribution[1]",
                  "must be between 1 and 5, got 0"});
}

BOOST_AUTO_TEST_CASE(priority_six_is_rejected) {
  check_contains(
    error_of(fixture("priority_six.toml")),
    {"priority_six.toml:2:29:", "test_profiles.lazy.priority_distribution[1]",
     "must be between 1 and 5, got 6"});
}

BOOST_AUTO_TEST_CASE(empty_distribution_is_rejected) {
  check_contains(error_of(fixture("empty_distribution.toml")),
                 {"empty_distribution.toml:2:",
                  "test_profiles.nothing.duration_distribution: must not be "
                  "empty"});
}

BOOST_AUTO_TEST_CASE(fraction_above_one_is_rejected) {
  check_contains(error_of(fixture("fraction_out_of_range.toml")),
                 {"fraction_out_of_range.toml:4:",
                  "scenario_configurations.too_many.events[0].fraction",
                  "at most 1, got 1.5"});
}

BOOST_AUTO_TEST_CASE(event_time_outside_the_run_is_rejected) {
  check_contains(
    error_of(fixture("at_out_of_range.toml")),
    {"at_out_of_range.toml:4:", "scenario_configurations.late.events[0].at",
     "must be between 0 and 1, got 2"});
}

BOOST_AUTO_TEST_CASE(zero_workers_is_rejected) {
  check_contains(error_of(fixture("workers_zero.toml")),
                 {"workers_zero.toml:2:11: test_configurations.empty.workers: "
                  "must be at least 1, got 0"});
}

BOOST_AUTO_TEST_CASE(unknown_keys_warn_with_a_suggestion) {
  auto cfg = load_config(fixture("unknown_keys.toml"));
  BOOST_TEST_REQUIRE(cfg.warnings.size() == 3u);
  check_contains(cfg.warnings[0],
                 {"unknown_keys.toml:2:1: unknown key 'worker' in "
                  "test_configurations.small (did you mean 'workers'?)"});
  check_contains(cfg.warnings[1], {"unknown_keys.toml:4:2: unknown key "
                                   "'schedular' at top level (did you mean "
                                   "'scheduler'?)"});
  check_contains(cfg.warnings[2],
                 {"unknown_keys.toml:8:1:", "'priority_distributon'",
                  "did you mean 'priority_distribution'?"});
  // Unknown keys change nothing: the misspelt section's best_fit is not
  // taken.
  BOOST_TEST(cfg.test_configurations.at("small").workers == 5);
  BOOST_TEST(cfg.scheduler.strategy == scheduler_config{}.strategy);
}

BOOST_AUTO_TEST_CASE(scenario_with_missing_profile_names_both) {
  check_contains(error_of(fixture("missing_profile.toml")),
                 {"missing_profile.toml:1:", "scenario 'broken'",
                  "worker_profile 'gpu_monster'", "not defined", "cpu_heavy"});
}

BOOST_AUTO_TEST_CASE(scenario_with_missing_test_config_suggests_the_near_one) {
  check_contains(
    error_of(fixture("missing_test_config.toml")),
    {"scenario 'broken'", "test_config 'mediun'", "did you mean 'medium'?"});
}

BOOST_AUTO_TEST_CASE(missing_file_is_named) {
  check_contains(error_of(fixture("no_such_file.toml")),
                 {"no_such_file.toml: config file not found"});
}

BOOST_AUTO_TEST_CASE(directory_is_not_a_config_file) {
  check_contains(error_of(data_dir), {"is a directory, not a config file"});
}

BOOST_AUTO_TEST_CASE(json_syntax_error_has_line_column_and_byte) {
  check_contains(
    error_of(fixture("syntax_error.json")),
    {"syntax_error.json:3:30: JSON syntax error at byte", "syntax error"});
}

BOOST_AUTO_TEST_CASE(json_wrong_type_names_the_key) {
  check_contains(error_of(fixture("wrong_type.json")),
                 {"wrong_type.json: test_configurations.small.workers: "
                  "expected an integer, got a string"});
}

BOOST_AUTO_TEST_CASE(json_null_is_rejected) {
  check_contains(
    error_of(fixture("null_value.json")),
    {"null_value.json: worker_profiles.balanced.description: null"});
}

BOOST_AUTO_TEST_CASE(unknown_event_action_lists_the_valid_ones) {
  check_contains(
    error_of(fixture("bad_action.toml")),
    {"bad_action.toml:2:", "unknown action 'explode_workers'", "kill_workers"});
}

BOOST_AUTO_TEST_CASE(burst_without_tests_is_rejected) {
  check_contains(error_of(fixture("burst_without_tests.toml")),
                 {"burst_without_tests.toml:2:", "events[0]", "needs 'tests'"});
}

BOOST_AUTO_TEST_CASE(worker_event_needs_exactly_one_amount) {
  check_contains(
    error_of(fixture("fraction_and_count.toml")),
    {"fraction_and_count.toml:2:", "exactly one of 'fraction' or 'count'"});
}

BOOST_AUTO_TEST_CASE(unknown_strategy_points_at_the_key) {
  check_contains(error_of(fixture("bad_strategy.toml")),
                 {"bad_strategy.toml:3:12: scheduler.strategy: unknown "
                  "strategy 'fastest_possible'",
                  "least_loaded"});
}

BOOST_AUTO_TEST_CASE(bad_scheduler_value_points_at_the_key) {
  check_contains(error_of(fixture("bad_scheduler_value.toml")),
                 {"bad_scheduler_value.toml:2:17: scheduler.tick_interval"});
}

BOOST_AUTO_TEST_CASE(bad_log_level_in_file_is_rejected) {
  check_contains(error_of(fixture("bad_log_level.toml")),
                 {"bad_log_level.toml:1:13: log_level: unknown log level "
                  "'LOUD'"});
}

BOOST_AUTO_TEST_CASE(duplicate_test_ids_are_rejected) {
  check_contains(error_of(fixture("duplicate_test_id.toml")),
                 {"duplicate_test_id.toml:", "tests[1]",
                  "duplicate test_id 'unit'", "first defined at",
                  "duplicate_test_id.toml:1:1)"});
}

BOOST_AUTO_TEST_CASE(command_must_be_an_argv_array) {
  check_contains(error_of(fixture("command_string.toml")),
                 {"command_string.toml:3:11: tests[0].command: expected an "
                  "array of strings"});
}

BOOST_AUTO_TEST_CASE(port_out_of_range_is_rejected) {
  check_contains(error_of(fixture("metrics_port.toml")),
                 {"metrics_port.toml:2:8: metrics.port: must be between -1 and "
                  "65535, got 70000"});
}

BOOST_AUTO_TEST_CASE(messages_stay_one_line_whatever_the_input) {
  // TOML escapes put real newlines into keys and values.
  auto cfg = load_config_from_string("\"bad\\nkey\" = 1\n", "nl.toml");
  BOOST_TEST_REQUIRE(cfg.warnings.size() == 1u);
  check_contains(cfg.warnings[0], {"nl.toml:1:1: unknown key 'bad\\nkey'"});
  try {
    load_config_from_string("log_level = \"a\\nb\\u0001\"", "nl.toml");
    BOOST_FAIL("should have failed");
  } catch (const config_error& e) {
    check_contains(e.what(), {"unknown log level 'a\\nb\\x01'"});
  }
}

BOOST_AUTO_TEST_CASE(non_ascii_keys_and_strings_parse_for_every_code_point) {
  // toml++ 3.3 reaches TOML_UNREACHABLE for these code points in quoted keys
  // and after a line-ending backslash (marzer/tomlplusplus#190, #295); this
  // checks that the library as built still parses them correctly.
  auto utf8 = [](char32_t c) {
    std::string s;
    if (c < 0x800) {
      s += static_cast<char>(0xC0 | (c >> 6));
    } else {
      s += static_cast<char>(0xE0 | (c >> 12));
      s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    }
    s += static_cast<char>(0x80 | (c & 0x3F));
    return s;
  };
  std::pair<char32_t, char32_t> ranges[]
    = {{0xA1, 0x499}, {0x2F8E, 0x3387}, {0xFBE6, 0xFEFE}};
  int checked = 0;
  for (auto [lo, hi] : ranges) {
    for (char32_t c = lo; c <= hi; ++c) {
      if (c == 0x3000) // ideographic space: toml++ trims it as whitespace
        continue;
      auto u = utf8(c);
      auto cfg = load_config_from_string("[test_configurations.\"k" + u
                                           + "\"]\ndescription = \"\"\"\\\n  "
                                           + u + "x\"\"\"\n",
                                         "unicode.toml");
      auto i = cfg.test_configurations.find("k" + u);
      BOOST_TEST_REQUIRE((i != cfg.test_configurations.end()),
                         "code point " << static_cast<unsigned>(c));
      BOOST_TEST_REQUIRE(i->second.description == u + "x",
                         "code point " << static_cast<unsigned>(c));
      ++checked;
    }
  }
  BOOST_TEST(checked > 2000);
}

BOOST_AUTO_TEST_CASE(deeply_nested_json_is_rejected_not_crashed) {
  std::string deep
    = "{\"a\":" + std::string(200, '[') + std::string(200, ']') + "}";
  try {
    load_config_from_string(deep, "deep.json");
    BOOST_FAIL("should have failed");
  } catch (const config_error& e) {
    check_contains(e.what(), {"deep.json:", "nested more than"});
  }
}

BOOST_AUTO_TEST_SUITE_END()

// -- environment --------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(environment)

BOOST_AUTO_TEST_CASE(environment_overrides_the_file) {
  auto cfg = load_config(fixture("full.toml"));
  BOOST_TEST(cfg.max_workers == 64);
  apply_environment(cfg, fake_env({{"LB_LOG_LEVEL", "warning"},
                                   {"LB_MAX_WORKERS", "10"},
                                   {"LB_DEFAULT_DURATION", "7.5"}}));
  BOOST_TEST(cfg.log_level == "WARNING");
  BOOST_TEST(cfg.max_workers == 10);
  BOOST_TEST(cfg.default_duration == 7.5);
}

BOOST_AUTO_TEST_CASE(unset_or_empty_variables_keep_the_file_values) {
  auto cfg = load_config(fixture("full.toml"));
  apply_environment(cfg, fake_env({{"LB_MAX_WORKERS", ""}}));
  BOOST_TEST(cfg.log_level == "DEBUG");
  BOOST_TEST(cfg.max_workers == 64);
  BOOST_TEST(cfg.default_duration == 12.5);
}

BOOST_AUTO_TEST_CASE(bad_environment_values_name_the_variable) {
  auto cfg = default_config();
  auto msg = [&](const char* var, const char* value) {
    try {
      apply_environment(cfg, fake_env({{var, value}}));
    } catch (const config_error& e) {
      return std::string{e.what()};
    }
    return std::string{"no error"};
  };
  check_contains(msg("LB_LOG_LEVEL", "TRACE"),
                 {"LB_LOG_LEVEL: unknown log level 'TRACE'"});
  check_contains(msg("LB_MAX_WORKERS", "many"), {"LB_MAX_WORKERS:", "'many'"});
  check_contains(msg("LB_MAX_WORKERS", "0"), {"LB_MAX_WORKERS:"});
  check_contains(msg("LB_MAX_WORKERS", "12x"), {"LB_MAX_WORKERS:"});
  check_contains(msg("LB_DEFAULT_DURATION", "-3"), {"LB_DEFAULT_DURATION:"});
  check_contains(msg("LB_DEFAULT_DURATION", "nan"), {"LB_DEFAULT_DURATION:"});
}

BOOST_AUTO_TEST_CASE(max_workers_caps_every_run) {
  auto cfg = default_config();
  BOOST_CHECK_NO_THROW(check_workers(cfg, 100000, "--workers"));
  apply_environment(cfg, fake_env({{"LB_MAX_WORKERS", "100"}}));
  BOOST_CHECK_NO_THROW(check_workers(cfg, 100, "--workers"));
  try {
    check_workers(cfg, 101, "--workers");
    BOOST_FAIL("101 workers should exceed the cap");
  } catch (const config_error& e) {
    check_contains(e.what(), {"--workers", "101", "100", "LB_MAX_WORKERS"});
  }
  BOOST_CHECK_THROW(check_workers(cfg, 0, "--workers"), config_error);
}

BOOST_AUTO_TEST_CASE(config_path_prefers_the_flag_over_lb_config_path) {
  auto env = fake_env({{"LB_CONFIG_PATH", "/from/env.toml"}});
  BOOST_TEST(config_path("", env) == "/from/env.toml");
  BOOST_TEST(config_path("/from/flag.toml", env) == "/from/flag.toml");
  BOOST_TEST(config_path("", fake_env({})) == "");
}

BOOST_AUTO_TEST_CASE(effective_config_layers_defaults_scenarios_file_env) {
  auto env = env_with_scenarios(
    {{"LB_CONFIG_PATH", fixture("full.toml")}, {"LB_MAX_WORKERS", "32"}});
  auto cfg = load_effective_config("", env);
  // Shipped scenarios and the file's own are both there.
  BOOST_TEST(cfg.scenario_configurations.count("worker_churn") == 1u);
  BOOST_TEST(cfg.scenario_configurations.count("custom") == 1u);
  BOOST_TEST(cfg.scheduler.strategy == "power_of_two"); // file
  BOOST_TEST(cfg.max_workers == 32);                    // env over file
  BOOST_TEST(cfg.log_level == "DEBUG");                 // file over default
  BOOST_TEST_REQUIRE(cfg.sources.size() == 2u);
  BOOST_TEST(cfg.sources[1] == fixture("full.toml"));
  // The flag wins over LB_CONFIG_PATH: the file names no strategy, so the
  // built-in default, not full.toml's power_of_two.
  auto flagged
    = load_effective_config(configs_dir + "reference_example.toml", env);
  BOOST_TEST(flagged.scheduler.strategy == scheduler_config{}.strategy);
}

BOOST_AUTO_TEST_CASE(the_default_strategy_is_adaptive_everywhere) {
  // alb benchmark measured adaptive best on heterogeneous fleets (README):
  // the built-in default, what a run without any file gets, and what the
  // shipped example and packaged configs give.
  BOOST_TEST(scheduler_config{}.strategy == "adaptive");
  BOOST_TEST(load_effective_config("", env_with_scenarios()).scheduler.strategy
             == "adaptive");
  BOOST_TEST(
    load_config(configs_dir + "cluster_example.toml").scheduler.strategy
    == "adaptive");
  BOOST_TEST(load_config(ALB_SOURCE_DIR "/packaging/etc/coordinator.toml")
               .scheduler.strategy
             == "adaptive");
  BOOST_TEST(
    load_config(configs_dir + "benchmark_workload.toml").scheduler.strategy
    == "adaptive");
}

BOOST_AUTO_TEST_CASE(bad_lb_config_path_says_where_the_path_came_from) {
  try {
    load_effective_config(
      "", env_with_scenarios({{"LB_CONFIG_PATH", "/nope.toml"}}));
    BOOST_FAIL("should have failed");
  } catch (const config_error& e) {
    check_contains(e.what(),
                   {"/nope.toml: config file not found", "LB_CONFIG_PATH"});
  }
}

BOOST_AUTO_TEST_SUITE_END()

// -- shipped scenarios --------------------------------------------------------

BOOST_AUTO_TEST_SUITE(scenarios)

BOOST_AUTO_TEST_CASE(shipped_scenarios_are_all_there_and_small) {
  auto cfg = default_config();
  merge_shipped_scenarios(cfg, env_with_scenarios());
  BOOST_TEST(cfg.warnings.empty());
  const char* expected[]
    = {"normal_operation",  "high_priority_burst", "resource_contention",
       "worker_churn",      "spike_and_recovery",  "heterogeneous_hardware",
       "gpu_scarcity",      "long_tail_durations", "mass_worker_failure",
       "priority_inversion"};
  BOOST_TEST(cfg.scenario_configurations.size() == std::size(expected));
  for (auto name : expected) {
    BOOST_TEST_CONTEXT("scenario " << name) {
      auto& s = find_scenario(cfg, name);
      BOOST_TEST(!s.description.empty());
      BOOST_TEST(!s.expectation.empty());
      auto& size = cfg.test_configurations.at(s.test_config);
      // Small enough to finish well under a minute: a short submission
      // window and tests of at most a few seconds.
      BOOST_TEST(size.duration <= 10);
      BOOST_TEST(size.workers <= 50);
      BOOST_TEST(size.tests <= 1000);
      BOOST_TEST(peak_workers(cfg, s) <= 100);
      for (auto d : cfg.test_profiles.at(s.test_profile).duration_distribution)
        BOOST_TEST(d <= 3);
    }
  }
  auto list = scenario_list(cfg);
  BOOST_TEST(list.size() == std::size(expected));
  BOOST_TEST(list.front().first == "gpu_scarcity");
}

BOOST_AUTO_TEST_CASE(shipped_scenarios_are_found_next_to_the_build) {
  // No ALB_SCENARIOS_PATH: found relative to this test's executable.
  auto path = shipped_scenarios_path(fake_env({}));
  BOOST_TEST_REQUIRE(!path.empty());
  BOOST_TEST(std::filesystem::equivalent(path, configs_dir + "scenarios.toml"));
}

BOOST_AUTO_TEST_CASE(user_file_overrides_a_shipped_scenario) {
  auto cfg = default_config();
  merge_shipped_scenarios(cfg, env_with_scenarios());
  merge_config_string(cfg,
                      "[scenario_configurations.worker_churn]\n"
                      "test_config = \"small\"\n",
                      "mine.toml");
  auto& s = find_scenario(cfg, "worker_churn");
  BOOST_TEST(s.test_config == "small");
  BOOST_TEST(s.events.size() == 4u); // untouched keys stay
}

BOOST_AUTO_TEST_CASE(unknown_scenario_lists_the_valid_names) {
  auto cfg = default_config();
  merge_shipped_scenarios(cfg, env_with_scenarios());
  try {
    find_scenario(cfg, "worker_chrun");
    BOOST_FAIL("should have failed");
  } catch (const config_error& e) {
    check_contains(e.what(),
                   {"unknown scenario 'worker_chrun'",
                    "did you mean 'worker_churn'?",
                    "available: gpu_scarcity, heterogeneous_hardware"});
  }
}

BOOST_AUTO_TEST_CASE(peak_workers_follows_the_script) {
  auto cfg = default_config();
  merge_shipped_scenarios(cfg, env_with_scenarios());
  // spike_and_recovery: 50 workers, +25 at 40%, -15 at 80%.
  BOOST_TEST(peak_workers(cfg, find_scenario(cfg, "spike_and_recovery")) == 75);
  // mass_worker_failure: 30, -15, +15.
  BOOST_TEST(peak_workers(cfg, find_scenario(cfg, "mass_worker_failure"))
             == 30);
  scenario_event ev;
  ev.action = scenario_action::kill_workers;
  ev.fraction = 0.01;
  BOOST_TEST(event_worker_count(ev, 30) == 1); // rounds up
  ev.fraction = 0;
  ev.count = 4;
  BOOST_TEST(event_worker_count(ev, 30) == 4);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_CASE(did_you_mean_only_suggests_near_words) {
  std::vector<std::string> words{"workers", "tests", "duration"};
  BOOST_TEST(did_you_mean("worker", words) == "workers");
  BOOST_TEST(did_you_mean("DURATON", words) == "duration");
  BOOST_TEST(did_you_mean("colour", words) == "");
  BOOST_TEST(did_you_mean("", words) == "");
}

// -- strict [[tests]]
// ----------------------------------------------------------

namespace {

std::string tests_error(const std::string& text) {
  try {
    load_config_from_string(text, "suite.toml", config_format::toml);
  } catch (const config_error& e) {
    return e.what();
  }
  BOOST_FAIL("loading should have failed:\n" << text);
  return {};
}

} // namespace

BOOST_AUTO_TEST_CASE(a_mistyped_test_key_is_an_error_with_a_suggestion) {
  // Was: a warning, and the test ran simulated and "completed".
  check_contains(
    tests_error("[[tests]]\ntest_id = \"a\"\ncomand = [\"false\"]\n"),
    {"suite.toml:3:1: unknown key 'comand' in tests[0]",
     "did you mean 'command'?"});
}

BOOST_AUTO_TEST_CASE(a_test_without_command_must_say_it_is_simulated) {
  check_contains(
    tests_error("[[tests]]\ntest_id = \"a\"\n"),
    {"suite.toml:", "tests[0]", "no 'command'", "simulate = true"});
  auto cfg = load_config_from_string(
    "[[tests]]\ntest_id = \"a\"\nsimulate = true\nexpected_duration = 1\n",
    "suite.toml", config_format::toml);
  BOOST_REQUIRE_EQUAL(cfg.tests.size(), 1u);
  BOOST_TEST(cfg.tests[0].simulate);
  BOOST_TEST(cfg.tests[0].command.empty());
  check_contains(
    tests_error(
      "[[tests]]\ntest_id = \"a\"\nsimulate = true\ncommand = [\"true\"]\n"),
    {"both 'command' and simulate = true"});
}

BOOST_AUTO_TEST_CASE(depends_on_is_refused_not_ignored) {
  check_contains(
    tests_error("[[tests]]\ntest_id = \"a\"\ncommand = "
                "[\"true\"]\ndepends_on = [\"b\"]\n"),
    {"suite.toml:4:1: unknown key 'depends_on' in tests[0]", "not supported"});
}

BOOST_AUTO_TEST_CASE(test_durations_past_30_days_are_refused) {
  // Was: timeout = 1e10 overflowed the timer and "timed out" at once.
  for (auto key : {"timeout", "expected_duration", "wait_limit"})
    for (auto value : {"1e10", "9.3e9", "1e300", "2592001"})
      check_contains(tests_error(std::string{"[[tests]]\ntest_id = \"a\"\n"
                                             "command = [\"true\"]\n"}
                                 + key + " = " + value + "\n"),
                     {"suite.toml:4:", std::string{"tests[0]."} + key,
                      "too long (at most 2592000 s"});
  auto cfg = load_config_from_string(
    "[[tests]]\ntest_id = \"a\"\ncommand = [\"true\"]\ntimeout = 2592000\n",
    "suite.toml", config_format::toml);
  BOOST_TEST(cfg.tests[0].requirements.timeout == 2592000.0);
}

BOOST_AUTO_TEST_CASE(nul_bytes_in_commands_and_environments_are_refused) {
  // Was: exec silently cut the argument at the NUL.
  check_contains(tests_error("[[tests]]\ntest_id = \"a\"\ncommand = "
                             "[\"echo\", \"a\\u0000b\"]\n"),
                 {"tests[0].command[1]", "NUL byte"});
  check_contains(tests_error("[[tests]]\ntest_id = \"a\"\ncommand = "
                             "[\"true\"]\nenv = { X = \"a\\u0000b\" }\n"),
                 {"tests[0].env.X", "NUL byte"});
  check_contains(tests_error("[[tests]]\ntest_id = \"a\"\ncommand = "
                             "[\"true\"]\ncwd = \"/tmp\\u0000x\"\n"),
                 {"tests[0].cwd", "NUL byte"});
}

// -- strict [node]
// -----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(node_section_reads_every_key) {
  auto cfg = load_config_from_string(
    "[node]\ncoordinator = \"alb://10.0.0.5:8080\"\nname = \"n1\"\n"
    "slots = 4\nmemory = 6.5\ncores = 8\naccelerators = { cuda = 2 }\n"
    "tags = [\"gpu\", \"fast\"]\ntoken_file = \"/etc/alb/token\"\n"
    "connect_timeout = 3\nreconnect_timeout = 0\nlog_level = \"debug\"\n"
    "log_format = \"json\"\n"
    "threads = 3\nmetrics_port = 0\nmetrics_bind = \"::1\"\n"
    "metrics_allow_remote = true\n"
    "software = { torch = \"2.3\", cuda = \"12.1\", mkl = \"\" }\n"
    "log_dir = \"/var/lib/alb/logs\"\nmax_output = \"16MiB\"\n"
    "log_keep = 50\nlog_max_bytes = 1048576\ncgroups = false\n",
    "node.toml", config_format::toml);
  auto& n = cfg.node;
  BOOST_TEST(cfg.warnings.empty());
  BOOST_TEST(*n.coordinator == "alb://10.0.0.5:8080");
  BOOST_TEST(n.coordinator_origin == "node.toml:2:15");
  BOOST_TEST(*n.name == "n1");
  BOOST_TEST(*n.slots == 4);
  BOOST_TEST(*n.memory_gb == 6.5);
  BOOST_TEST(*n.cores == 8);
  BOOST_TEST(n.accelerators->at("cuda") == 2);
  BOOST_TEST(*n.tags == (std::vector<std::string>{"gpu", "fast"}));
  BOOST_TEST(*n.token_file == "/etc/alb/token");
  BOOST_TEST(*n.connect_timeout == 3);
  BOOST_TEST(*n.reconnect_timeout == 0);
  BOOST_TEST(*n.log_level == "DEBUG");
  BOOST_TEST(*n.log_format == "json");
  BOOST_TEST(*n.threads == 3);
  BOOST_TEST(*n.metrics_port == 0);
  BOOST_TEST(*n.metrics_bind == "::1");
  BOOST_TEST(*n.metrics_allow_remote);
  BOOST_TEST(n.software->at("torch") == "2.3");
  BOOST_TEST(n.software->at("cuda") == "12.1");
  BOOST_TEST(n.software->at("mkl") == "");
  BOOST_TEST(*n.log_dir == "/var/lib/alb/logs");
  BOOST_TEST(*n.max_output == 16u * 1024 * 1024);
  BOOST_TEST(*n.log_keep == 50);
  BOOST_TEST(*n.log_max_bytes == 1048576u);
  BOOST_TEST(!*n.cgroups);
  // Unset keys stay unset (the flags' defaults apply).
  auto empty
    = load_config_from_string("[node]\n", "node.toml", config_format::toml);
  BOOST_TEST(!empty.node.slots);
  BOOST_TEST(!empty.node.accelerators);
  BOOST_TEST(!empty.node.software);
  BOOST_TEST(!empty.node.max_output);
  BOOST_TEST(!empty.node.cgroups);
}

BOOST_AUTO_TEST_CASE(node_section_is_strict_and_range_checked) {
  auto err
    = [](const std::string& body) { return tests_error("[node]\n" + body); };
  check_contains(err("slot = 2\n"), {"suite.toml:2:1: unknown key 'slot' in "
                                     "node",
                                     "did you mean 'slots'?"});
  check_contains(err("workers = 2\n"),
                 {"suite.toml:2:1: unknown key 'workers' in node", "'slots'"});
  check_contains(err("slots = 0\n"), {"suite.toml:2:9: node.slots: must be "
                                      "between 1 and 100000, got 0"});
  check_contains(err("memory = -1\n"), {"node.memory", "negative"});
  check_contains(err("memory = 2e6\n"), {"node.memory", "at most"});
  check_contains(err("connect_timeout = 1e9\n"),
                 {"node.connect_timeout", "at most 86400"});
  check_contains(err("metrics_port = 70000\n"), {"node.metrics_port"});
  check_contains(err("threads = 0\n"), {"node.threads"});
  check_contains(err("accelerators = { cuda = -1 }\n"),
                 {"node.accelerators.cuda"});
  check_contains(err("log_level = \"LOUD\"\n"), {"unknown log level 'LOUD'"});
  check_contains(err("log_format = \"xml\"\n"),
                 {"suite.toml:2:14: node.log_format", "unknown log format"});
  check_contains(err("coordinator = \"\"\n"),
                 {"node.coordinator", "must not be empty"});
  check_contains(err("[node.tls]\ncert = \"x\"\n"),
                 {"unknown key 'tls' in node", "top-level [tls]"});
  // The keys that had only flags before: as strict as the flags.
  check_contains(
    err("software = { cuda = 12.1 }\n"),
    {"suite.toml:2:21: node.software.cuda", "expected a version string"});
  check_contains(err("software = { \"torch>=2\" = \"2.3\" }\n"),
                 {"node.software", "bad software name 'torch>=2'"});
  check_contains(err("software = { torch = \"2 .3\" }\n"),
                 {"node.software.torch", "bad version"});
  check_contains(err("software = [\"torch=2.3\"]\n"),
                 {"node.software", "expected a table"});
  check_contains(err("max_output = \"lots\"\n"),
                 {"suite.toml:2:14: node.max_output", "not a size"});
  check_contains(err("max_output = 10\n"), {"node.max_output", "1 KiB"});
  check_contains(err("log_keep = 0\n"), {"node.log_keep", "between 1 and"});
  check_contains(err("log_max_bytes = 0\n"),
                 {"node.log_max_bytes", "must be positive"});
  check_contains(err("log_dir = \"\"\n"),
                 {"node.log_dir", "must not be empty"});
  check_contains(err("cgroups = \"no\"\n"),
                 {"node.cgroups", "expected a boolean"});
  check_contains(err("max_ouput = 1\n"),
                 {"unknown key 'max_ouput' in node", "'max_output'"});
}

BOOST_AUTO_TEST_CASE(shipped_node_configs_load_cleanly) {
  for (auto path : {ALB_SOURCE_DIR "/configs/node.toml",
                    ALB_SOURCE_DIR "/packaging/etc/node.toml"}) {
    auto cfg = load_config(path);
    BOOST_TEST(cfg.warnings.empty(), path);
    BOOST_TEST(cfg.node.coordinator.has_value(), path);
    BOOST_TEST(cfg.node.token_file.has_value(), path);
  }
}
