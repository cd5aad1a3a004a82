#define BOOST_TEST_MODULE scenario_checks
#include <boost/test/unit_test.hpp>

// Scenario expectations as data: parsing them from TOML, measuring metrics
// (paths and derived figures) in a result document, and judging them. The
// shipped checks hold on a healthy run's figures and fail on a broken
// strategy's.

#include <string>

#include <nlohmann/json.hpp>

#include "runtime/config.hpp"
#include "runtime/scenario_checks.hpp"

using namespace alb;
using nlohmann::json;

namespace {

/// A result document with `per_worker` tests placed on each worker.
json document(const std::vector<int>& per_worker, double p1_avg,
              double p5_avg) {
  double n = static_cast<double>(per_worker.size());
  double sum = 0, lo = 1e18, hi = 0;
  for (auto a : per_worker) {
    sum += a;
    lo = std::min<double>(lo, a);
    hi = std::max<double>(hi, a);
  }
  double mean = sum / n, var = 0;
  for (auto a : per_worker)
    var += (a - mean) * (a - mean);
  json m = {{"total_tests", sum},
            {"completed_tests", sum},
            {"failed_tests", 0},
            {"cancelled_tests", 0},
            {"pending_tests", 0},
            {"success_rate", 100.0},
            {"retried_tests", 0},
            {"migrated_tests", 2},
            {"stolen_tests", 3},
            {"max_memory_reservation", 0.5},
            {"max_accelerator_reservation", 1.0},
            {"worker_assignment_mean", mean},
            {"worker_assignment_stddev", std::sqrt(var / n)},
            {"worker_assignment_range", hi - lo},
            {"p99_latency", 0.1}};
  m["latency_by_priority"]
    = {{"1", {{"avg_latency", p1_avg}, {"p99_latency", 0.1}, {"count", 5}}},
       {"5", {{"avg_latency", p5_avg}, {"p99_latency", 0.2}, {"count", 5}}}};
  json doc = {{"metrics", m}, {"configuration", json::object()}};
  doc["configuration"]["events"]
    = json::array({{{"action", "submit_burst"}, {"at_seconds", 2.0}}});
  doc["time_series"]["queue_depth"]
    = json::array({{0.0, 1.0}, {1.0, 3.0}, {2.0, 40.0}, {3.0, 0.0}});
  return doc;
}

scenario_expectation expect(std::string metric, comparison op, double t,
                            std::string than = {}) {
  return {"x", std::move(metric), op, t, std::move(than)};
}

} // namespace

BOOST_AUTO_TEST_CASE(comparisons_parse_and_print_both_ways) {
  for (auto s : {"<", "<=", ">", ">=", "=="})
    BOOST_TEST(to_string(*parse_comparison(s)) == std::string{s});
  BOOST_TEST(!parse_comparison("=>"));
  BOOST_TEST(!parse_comparison(""));
}

BOOST_AUTO_TEST_CASE(metrics_are_found_by_path_and_derived) {
  auto doc = document({10, 10, 10, 10}, 0.01, 0.2);
  BOOST_TEST(*measure(doc, "success_rate") == 100.0);
  BOOST_TEST(*measure(doc, "latency_by_priority.5.avg_latency") == 0.2);
  BOOST_TEST(*measure(doc, "assignment_cv") == 0.0);
  BOOST_TEST(*measure(doc, "moved_tests") == 5.0);
  BOOST_TEST(*measure(doc, "lost_tests") == 0.0);
  BOOST_TEST(*measure(doc, "peak_reservation") == 1.0);
  BOOST_TEST(*measure(doc, "queue_depth_final") == 0.0);
  // The sample at 1 s is the state at the end of [1, 2): before the burst.
  BOOST_TEST(*measure(doc, "queue_depth_peak_before_burst") == 3.0);
  BOOST_TEST(*measure(doc, "queue_depth_peak_after_burst") == 40.0);
  BOOST_TEST(!measure(doc, "no_such_metric"));
  BOOST_TEST(!measure(doc, "latency_by_priority.9.avg_latency"));
  doc["metrics"]["pending_tests"] = 2;
  BOOST_TEST(*measure(doc, "lost_tests") == 2.0);
}

BOOST_AUTO_TEST_CASE(unknown_metrics_are_named_in_the_problem) {
  BOOST_TEST(metric_problem("p99_latency") == "");
  BOOST_TEST(metric_problem("latency_by_priority.3.p50_latency") == "");
  BOOST_TEST(metric_problem("assignment_cv") == "");
  auto p = metric_problem("p99_latncy");
  BOOST_TEST(p.find("unknown metric 'p99_latncy'") != std::string::npos, p);
  BOOST_TEST(metric_problem("latency_by_priority").find("not a number")
             != std::string::npos);
}

BOOST_AUTO_TEST_CASE(each_comparison_judges_and_details_the_measurement) {
  auto doc = document({10, 10, 10, 10}, 0.01, 0.2);
  auto out
    = evaluate({expect("success_rate", comparison::equal, 100),
                expect("moved_tests", comparison::greater, 5),
                expect("moved_tests", comparison::greater_equal, 5),
                expect("assignment_cv", comparison::less, 0),
                expect("assignment_cv", comparison::less_equal, 0),
                expect("latency_by_priority.1.avg_latency", comparison::less,
                       0.1, "latency_by_priority.5.avg_latency"),
                expect("missing_metric", comparison::less, 1)},
               doc);
  BOOST_REQUIRE(out.size() == 7u);
  BOOST_TEST(out[0].passed);
  BOOST_TEST(!out[1].passed);
  BOOST_TEST(out[2].passed);
  BOOST_TEST(!out[3].passed);
  BOOST_TEST(out[4].passed);
  // 0.01 < 0.1 x 0.2 = 0.02.
  BOOST_TEST(out[5].passed);
  BOOST_TEST(out[5].bound == 0.02, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(out[5].detail()
             == "latency_by_priority.1.avg_latency = 0.01 (< 0.1 x "
                "latency_by_priority.5.avg_latency = 0.02)");
  // A metric the result does not have is never met.
  BOOST_TEST(!out[6].found);
  BOOST_TEST(!out[6].passed);
  BOOST_TEST(out[6].detail() == "missing_metric = missing (< 1)");
  BOOST_TEST(out[1].detail() == "moved_tests = 5 (> 5)");
}

BOOST_AUTO_TEST_CASE(checks_are_read_from_toml_and_bad_ones_refused) {
  auto cfg = load_config_from_string(R"(
[scenario_configurations.s]
test_config = "small"
checks = [
  { what = "even", metric = "assignment_cv", op = "<=", threshold = 0.5 },
  { what = "p1 first", metric = "latency_by_priority.1.avg_latency", op = "<", than = "latency_by_priority.5.avg_latency" },
]
)",
                                     "t.toml");
  auto& c = cfg.scenario_configurations.at("s").checks;
  BOOST_REQUIRE(c.size() == 2u);
  BOOST_TEST(c[0].what == "even");
  BOOST_TEST(c[0].metric == "assignment_cv");
  BOOST_TEST((c[0].op == comparison::less_equal));
  BOOST_TEST(c[0].threshold == 0.5);
  BOOST_TEST(c[1].than == "latency_by_priority.5.avg_latency");
  BOOST_TEST(c[1].threshold == 1.0);
  for (
    auto bad : {
      R"(checks = [{ what = "w", metric = "p99_latncy", op = "<", threshold = 1 }])",
      R"(checks = [{ what = "w", metric = "p99_latency", op = "=<", threshold = 1 }])",
      R"(checks = [{ what = "w", metric = "p99_latency", op = "<" }])",
      R"(checks = [{ metric = "p99_latency", op = "<", threshold = 1 }])",
    }) {
    std::string text = std::string{"[scenario_configurations.s]\n"
                                   "test_config = \"small\"\n"}
                       + bad + "\n";
    try {
      load_config_from_string(text, "bad.toml");
      BOOST_ERROR("accepted: " << bad);
    } catch (const config_error& e) {
      std::string msg = e.what();
      BOOST_TEST(msg.find("bad.toml") != std::string::npos, msg);
      BOOST_TEST(msg.find("checks[0]") != std::string::npos, msg);
    }
  }
}

BOOST_AUTO_TEST_CASE(shipped_checks_fail_a_strategy_that_piles_tests_up) {
  // The shipped normal_operation expectations on a healthy spread and on
  // everything placed on 2 of 30 workers.
  auto cfg = default_config();
  merge_config_file(cfg, ALB_SOURCE_DIR "/configs/scenarios.toml");
  auto& s = cfg.scenario_configurations.at("normal_operation");
  BOOST_TEST_REQUIRE(!s.checks.empty());
  std::vector<int> even(30, 16), piled(30, 0);
  piled[0] = 250;
  piled[1] = 250;
  auto all_met = [&](const json& doc) {
    bool ok = true;
    for (auto& c : evaluate(s.checks, doc))
      ok = ok && c.passed;
    return ok;
  };
  BOOST_TEST(all_met(document(even, 0.01, 0.02)));
  BOOST_TEST(!all_met(document(piled, 0.01, 0.02)));
  // Every shipped check names a metric a result has.
  for (auto& [name, sc] : cfg.scenario_configurations)
    for (auto& c : sc.checks) {
      BOOST_TEST(metric_problem(c.metric) == "", name);
      BOOST_TEST(!c.what.empty(), name);
    }
}
