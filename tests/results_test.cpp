#define BOOST_TEST_MODULE results
#include <boost/test/unit_test.hpp>

// The fields of a result are what their names say, whoever produces them:
// a simulated run (stress, scenario, spike) and the embedding API.

#include <chrono>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "actors/load_balancer_service.hpp"
#include "actors/simulation_run.hpp"

using namespace alb;
using nlohmann::json;

BOOST_AUTO_TEST_CASE(a_stress_run_peak_is_at_most_one_seconds_completions) {
  // 1000 tests over half a second end within about a second: the busiest
  // 1 s window cannot hold more than all of them. The landed main scaled a
  // 0.1 s bucket to a rate and reported several times that.
  simulation_options o;
  o.workers = 50;
  o.tests = 1000;
  o.duration = 0.5;
  o.deterministic = true;
  auto r = run_simulation(o);
  auto& m = r.document.at("metrics");
  auto completed = m.at("completed_tests").get<double>();
  auto peak = m.at("peak_throughput").get<double>();
  BOOST_TEST(completed == 1000.0);
  BOOST_TEST(peak <= completed);
  BOOST_TEST(peak >= m.at("avg_throughput").get<double>() * 0.999);
  BOOST_TEST(peak > 0);
  // The series' own view of the busiest window is the same definition.
  double series_peak = 0;
  for (auto& p : r.document.at("time_series").at("throughput_1s"))
    series_peak = std::max(series_peak, p.at(1).get<double>());
  BOOST_TEST(series_peak <= completed);
  BOOST_TEST(series_peak > 0);
}

BOOST_AUTO_TEST_CASE(the_embedding_api_reports_peak_throughput) {
  // The API's metrics_json() came with peak_throughput 0.0 whatever ran.
  load_balancer_service lb;
  lb.start();
  worker_capabilities caps;
  caps.worker_id = "w";
  caps.available_memory = 64;
  caps.cpu_cores = 8;
  caps.max_concurrent_tests = 8;
  lb.register_worker("w", caps);
  for (int i = 0; i < 6; ++i) {
    test_requirements t;
    t.test_id = "t" + std::to_string(i);
    t.minimum_memory = 1;
    t.expected_duration = 0.01;
    lb.submit_test(t);
  }
  // Completes what is assigned until nothing is open (event, not time).
  int completed = 0;
  for (int round = 0; round < 1000 && completed < 6; ++round) {
    for (auto& a : lb.get_assignments())
      if (a.status == test_status::assigned) {
        test_result res;
        res.success = true;
        res.execution_time = 0.01;
        if (lb.complete_test(a.test_id, res))
          ++completed;
      }
    if (completed < 6)
      lb.wait_idle(0.01);
  }
  BOOST_TEST_REQUIRE(completed == 6);
  BOOST_TEST_REQUIRE(lb.wait_idle(5));
  auto m = json::parse(lb.metrics_json());
  lb.stop();
  BOOST_TEST(m.at("completed_tests").get<uint64_t>() == 6u);
  // All six ended well within one second of each other.
  BOOST_TEST(m.at("peak_throughput").get<double>() == 6.0);
  BOOST_TEST(m.at("p50_latency").get<double>() >= 0.0);
}
