#define BOOST_TEST_MODULE run_stats
#include <boost/test/unit_test.hpp>

#include "runtime/cluster_state.hpp"
#include "runtime/rng.hpp"
#include "runtime/run_stats.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

using namespace alb;
namespace tt = boost::test_tools;

namespace {

worker_capabilities make_worker(std::string id, double memory, int slots) {
  worker_capabilities w;
  w.worker_id = std::move(id);
  w.available_memory = memory;
  w.max_concurrent_tests = slots;
  return w;
}

test_requirements make_test(std::string id, double memory) {
  test_requirements t;
  t.test_id = std::move(id);
  t.minimum_memory = memory;
  return t;
}

attempt_outcome outcome(bool success, double exec) {
  attempt_outcome o;
  o.success = success;
  o.exec_seconds = exec;
  return o;
}

struct placement {
  uint32_t slot;
  test_handle handle;
};

/// Dispatches and returns where each new placement went, by test id.
void dispatch(cluster_state& c, double now,
              std::unordered_map<std::string, placement>& placed) {
  c.dispatch(now);
  c.drain_outbox([&](uint32_t slot, std::vector<test_handle>& hs) {
    for (auto& h : hs)
      placed[c.record(h).req.test_id] = placement{slot, h};
  });
  BOOST_TEST(c.check_invariants() == "");
}

} // namespace

// -- a scripted run
// ------------------------------------------------------------

// Two one-slot workers of 8 GB join at t=0; round robin, no prefetch.
//
//   t=0    submit t1, t2 (4 GB) and t5 (16 GB, fits nowhere);
//          t1 -> w0, t2 -> w1 (2 tries); t5 waits: no free slot
//   t=0.5  t2 starts                                   (latency 0.5)
//   t=1    submit t3, t4 (4 GB); no free slot
//   t=2    t1 passes after 2 s (started at 0,            latency 0)
//          t5 tried and parked, t3 -> w0 (2 tries)
//   t=3    t3 passes after 1 s (started at 2, submitted 1: latency 1)
//          t4 -> w0 (1 try; t5 is ruled out without a try)
//   t=4    t4 fails after 1 s  (started at 3, submitted 1: latency 2)
//   t=6.5  t2 passes after 6 s
//
// Placements: w0 3 (t1, t3, t4), w1 1 (t2); busy: w0 4 s, w1 6 s.
BOOST_AUTO_TEST_CASE(a_scripted_run_yields_the_hand_computed_metrics) {
  scheduler_config cfg;
  cfg.strategy = "round_robin";
  cfg.prefetch = 0;
  cluster_state c{cfg};
  std::unordered_map<std::string, placement> placed;
  auto w0 = c.add_worker(make_worker("w0", 8, 1), 0);
  auto w1 = c.add_worker(make_worker("w1", 8, 1), 0);
  c.submit(make_test("t1", 4), 0);
  c.submit(make_test("t2", 4), 0);
  c.submit(make_test("t5", 16), 0);
  dispatch(c, 0, placed);
  BOOST_REQUIRE(placed.count("t1") == 1u);
  BOOST_REQUIRE(placed.count("t2") == 1u);
  BOOST_TEST(placed["t1"].slot == w0);
  BOOST_TEST(placed["t2"].slot == w1);
  c.started(w1, placed["t2"].handle, 0.5);
  c.submit(make_test("t3", 4), 1);
  c.submit(make_test("t4", 4), 1);
  dispatch(c, 1, placed);
  BOOST_TEST(c.complete(w0, placed["t1"].handle, outcome(true, 2), 2));
  dispatch(c, 2, placed);
  BOOST_REQUIRE(placed.count("t3") == 1u);
  BOOST_TEST(placed["t3"].slot == w0);
  BOOST_TEST(c.parked() == 1u);
  BOOST_TEST(c.complete(w0, placed["t3"].handle, outcome(true, 1), 3));
  dispatch(c, 3, placed);
  BOOST_REQUIRE(placed.count("t4") == 1u);
  BOOST_TEST(placed["t4"].slot == w0);
  BOOST_TEST(c.complete(w0, placed["t4"].handle, outcome(false, 1), 4));
  dispatch(c, 4, placed);
  BOOST_TEST(c.complete(w1, placed["t2"].handle, outcome(true, 6), 6.5));
  dispatch(c, 6.5, placed);

  auto pending = c.queued() + c.parked();
  BOOST_TEST(pending == 1u);
  // The end time passed in does not matter once tests have ended.
  auto m = c.stats().metrics(10, c.worker_count(), pending);
  BOOST_TEST(m.total_tests == 5u);
  BOOST_TEST(m.completed_tests == 3u);
  BOOST_TEST(m.failed_tests == 1u);
  BOOST_TEST(m.cancelled_tests == 0u);
  BOOST_TEST(m.success_rate == 60.0, tt::tolerance(1e-9));
  BOOST_TEST(m.avg_latency == 3.5 / 4, tt::tolerance(1e-9));
  BOOST_TEST(m.min_latency == 0.0);
  BOOST_TEST(m.max_latency == 2.0, tt::tolerance(1e-9));
  // Waits 0, 0.5, 1, 2: nearest-rank percentiles are recorded waits.
  BOOST_TEST(m.p50_latency == 0.5);
  BOOST_TEST(m.p95_latency == 2.0);
  BOOST_TEST(m.p99_latency == 2.0);
  // Completions at 2, 3 and 6.5: no 1 s window (t - 1, t] holds two.
  BOOST_TEST(m.peak_throughput == 1.0);
  BOOST_TEST(m.makespan == 6.5, tt::tolerance(1e-9));
  BOOST_TEST(m.avg_throughput == 3 / 6.5, tt::tolerance(1e-9));
  // Placements 3 and 1: mean 2, population stddev 1, range 2.
  BOOST_TEST(m.worker_assignment_stddev == 1.0, tt::tolerance(1e-9));
  BOOST_TEST(m.worker_assignment_range == 2.0, tt::tolerance(1e-9));
  // Busy slot-seconds over present slot-seconds: 4/6.5 and 6/6.5.
  BOOST_TEST(m.worker_utilization == (4 / 6.5 + 6 / 6.5) / 2,
             tt::tolerance(1e-9));
  // A fraction, like worker_utilization.
  BOOST_TEST(m.utilization_stddev == 1 / 6.5, tt::tolerance(1e-9));
  // Five tries (t1, t2, t5, t3, t4) for four placed tests.
  BOOST_TEST(m.avg_scheduling_attempts == 1.25, tt::tolerance(1e-9));
  BOOST_TEST(m.final_worker_count == 2u);
  BOOST_TEST(m.pending_tests == 1u);
  BOOST_TEST(m.assigned_tests == 4u);
  BOOST_TEST(m.avg_execution_time == 3.0, tt::tolerance(1e-9));
  // Turnarounds of the passed tests: 2, 2 and 6.5.
  BOOST_TEST(m.avg_turnaround == 10.5 / 3, tt::tolerance(1e-9));
  BOOST_TEST(m.max_memory_reservation == 0.5, tt::tolerance(1e-6));
  BOOST_TEST(m.max_accelerator_reservation == 0.0);
  auto& ws = c.stats().workers();
  BOOST_REQUIRE(ws.size() == 2u);
  BOOST_TEST(ws[0].assignments == 3u);
  BOOST_TEST(ws[0].completed == 2u);
  BOOST_TEST(ws[0].busy_seconds == 4.0, tt::tolerance(1e-9));
  BOOST_TEST(ws[1].busy_seconds == 6.0, tt::tolerance(1e-9));
}

BOOST_AUTO_TEST_CASE(utilization_counts_only_the_time_a_worker_was_present) {
  run_stats s;
  s.submitted(0);
  auto a = s.worker_joined("a", 0, 2);
  auto b = s.worker_joined("b", 5, 1);
  s.worker_assigned(a);
  s.worker_assigned(a);
  s.worker_assigned(b);
  s.worker_ran(a, 8, true);
  s.worker_ran(b, 4, false);
  s.worker_left(a, 8);
  s.completed(10, 8, 10);
  auto m = s.metrics(10, 1, 0);
  // a: 8 busy slot-seconds of 2 slots * 8 s; b: 4 of 1 slot * 5 s.
  BOOST_TEST(m.worker_utilization == (0.5 + 0.8) / 2, tt::tolerance(1e-9));
  // A fraction like worker_utilization, not percentage points.
  BOOST_TEST(m.utilization_stddev == 0.15, tt::tolerance(1e-9));
  BOOST_TEST(m.worker_assignment_range == 1.0);
  BOOST_TEST(m.worker_assignment_stddev == 0.5, tt::tolerance(1e-9));
  BOOST_TEST(m.final_worker_count == 1u);
}

BOOST_AUTO_TEST_CASE(a_run_that_has_not_ended_measures_up_to_the_end_given) {
  run_stats s;
  s.submitted(2);
  auto w = s.worker_joined("w", 0, 1);
  s.worker_ran(w, 3, true);
  auto m = s.metrics(8, 1, 1);
  // Nothing ended: the makespan runs from the first submission to `end`.
  BOOST_TEST(m.makespan == 6.0, tt::tolerance(1e-9));
  BOOST_TEST(m.avg_throughput == 0.0);
  BOOST_TEST(m.worker_utilization == 0.5, tt::tolerance(1e-9));
}

BOOST_AUTO_TEST_CASE(an_empty_run_has_zero_metrics_and_no_nan) {
  run_stats s;
  auto m = s.metrics(5, 0, 0);
  nlohmann::json j = m;
  for (auto& [key, value] : j.items())
    if (value.is_number_float())
      BOOST_TEST(std::isfinite(value.get<double>()), key);
  BOOST_TEST(m.total_tests == 0u);
  BOOST_TEST(m.success_rate == 0.0);
  BOOST_TEST(m.avg_latency == 0.0);
  BOOST_TEST(m.avg_throughput == 0.0);
  BOOST_TEST(m.avg_scheduling_attempts == 0.0);
  BOOST_TEST(m.makespan == 0.0);
}

BOOST_AUTO_TEST_CASE(peak_throughput_is_the_busiest_one_second_window) {
  // Nobody sets the peak: run_stats computes it from the completions, so the
  // API and the coordinator (which only have run_stats) report it too.
  run_stats s;
  s.submitted(0);
  for (double t : {0.1, 0.5, 0.9, 1.05, 1.2, 3.0})
    s.completed(t, 0.1, 0.1);
  s.failed(1.1, false, false); // not a completion
  // (0.05, 1.05] and (0.2, 1.2] hold four each; no window holds five.
  BOOST_TEST(s.metrics(3, 1, 0).peak_throughput == 4.0);
  // Far more than avg_throughput, but never more than one second's tests.
  BOOST_TEST(s.metrics(3, 1, 0).peak_throughput
             <= static_cast<double>(s.completed_count()));
}

BOOST_AUTO_TEST_CASE(sliding_peak_counts_half_open_windows_exactly) {
  sliding_peak p{1.0};
  BOOST_TEST(p.peak() == 0u);
  BOOST_TEST(p.add(0.0) == 1u);
  BOOST_TEST(p.add(0.5, 3) == 4u);
  // 0.0 falls out of (0.0, 1.0]; 0.5 stays.
  BOOST_TEST(p.add(1.0) == 4u);
  BOOST_TEST(p.add(1.5) == 2u);
  BOOST_TEST(p.peak() == 4u);
  // A time before the last counts at the last.
  BOOST_TEST(p.add(0.2) == 3u);
  // Long runs keep only one window's events (1/16 s apart: exact in
  // binary, so 16 per window).
  for (int i = 0; i < 100000; ++i)
    p.add(2 + i * 0.0625);
  BOOST_TEST(p.peak() == 16u);
}

BOOST_AUTO_TEST_CASE(to_json_carries_every_reference_field) {
  run_stats s;
  s.submitted(0);
  s.completed(1, 1, 1);
  nlohmann::json j = s.metrics(1, 3, 0);
  for (auto key : {"total_tests", "success_rate", "avg_latency", "max_latency",
                   "min_latency", "peak_throughput", "avg_throughput",
                   "worker_assignment_stddev", "worker_assignment_range",
                   "worker_utilization", "avg_scheduling_attempts",
                   "final_worker_count", "pending_tests", "assigned_tests"})
    BOOST_TEST(j.contains(key), "missing " << key);
  BOOST_TEST(j["total_tests"].get<uint64_t>() == 1u);
  BOOST_TEST(j["success_rate"].get<double>() == 100.0);
  BOOST_TEST(j["final_worker_count"].get<uint64_t>() == 3u);
}

// -- wait_samples ------------------------------------------------------------

BOOST_AUTO_TEST_CASE(wait_samples_quantiles_are_the_sorted_data_at_rank) {
  rng r{7};
  // Uniform, exponential-ish and log-uniform data over several decades.
  std::vector<std::vector<double>> sets(3);
  for (int i = 0; i < 5000; ++i) {
    sets[0].push_back(r.uniform(0.001, 10));
    sets[1].push_back(-std::log(1 - r.uniform()) * 0.2 + 1e-5);
    sets[2].push_back(std::pow(10.0, r.uniform(-4, 4)));
  }
  for (size_t k = 0; k < sets.size(); ++k) {
    auto xs = sets[k];
    wait_samples h;
    double sum = 0;
    for (auto x : xs) {
      h.add(x);
      sum += x;
    }
    std::sort(xs.begin(), xs.end());
    BOOST_TEST(h.count() == xs.size());
    BOOST_TEST(h.min() == xs.front());
    BOOST_TEST(h.max() == xs.back());
    BOOST_TEST(h.mean() == sum / static_cast<double>(xs.size()),
               tt::tolerance(1e-9));
    for (double q : {0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0}) {
      auto rank = std::max<size_t>(
        1, static_cast<size_t>(std::ceil(q * static_cast<double>(xs.size()))));
      BOOST_TEST(h.quantile(q) == xs[rank - 1], "set " << k << " q " << q);
    }
  }
}

BOOST_AUTO_TEST_CASE(p99_tells_apart_waits_a_bucket_would_merge) {
  // The old 2% log buckets printed 22.774 for both of these.
  for (double tail : {22.738, 22.725}) {
    run_stats s;
    for (int i = 0; i < 98; ++i)
      s.started(1.0, 3);
    s.started(tail, 1);
    s.started(30.0, 5);
    auto m = s.metrics(40, 1, 0);
    BOOST_TEST(m.p99_latency == tail);
    BOOST_TEST(m.p50_latency == 1.0);
    BOOST_TEST(m.latency_by_priority[0].p99 == tail);
    BOOST_TEST(m.latency_by_priority[4].p50 == 30.0);
    BOOST_TEST(s.latency().count() == 100u);
  }
}

BOOST_AUTO_TEST_CASE(wait_samples_of_few_values_are_exact) {
  wait_samples h;
  BOOST_TEST(h.quantile(0.5) == 0.0);
  BOOST_TEST(h.mean() == 0.0);
  h.add(3);
  BOOST_TEST(h.quantile(0) == 3.0);
  BOOST_TEST(h.quantile(0.5) == 3.0);
  BOOST_TEST(h.quantile(1) == 3.0);
  h.add(-1); // counts as 0
  BOOST_TEST(h.min() == 0.0);
  BOOST_TEST(h.quantile(0.5) == 0.0);
  BOOST_TEST(h.quantile(1) == 3.0);
  BOOST_TEST(h.sum() == 3.0);
  // Adding after a quantile keeps the order right.
  h.add(1);
  BOOST_TEST(h.quantile(0.5) == 1.0);
  wait_samples other;
  other.add(0.5);
  h.merge(other);
  BOOST_TEST(h.count() == 4u);
  BOOST_TEST(h.quantile(0.5) == 0.5);
  BOOST_TEST(h.quantile(0.75) == 1.0);
}

// -- time_series -------------------------------------------------------------

BOOST_AUTO_TEST_CASE(time_series_reports_completions_per_second_per_bucket) {
  time_series ts{0.5};
  ts.add_completions(-1, 1); // before the start: the first bucket
  ts.add_completions(0.1, 2);
  ts.add_completions(0.4, 1);
  ts.add_completions(1.2, 4);
  // Buckets [0, 0.5): 4, [0.5, 1): 0, [1, 1.5): 4 completions. The peak is
  // not a bucket scaled to a rate (8/s) but the busiest 1 s window:
  // (0.2, 1.2] holds 1 + 4.
  BOOST_TEST(ts.peak_throughput() == 5.0);
  auto j = ts.to_json();
  auto& tp = j["throughput"];
  BOOST_REQUIRE(tp.size() == 3u);
  BOOST_TEST(tp[0][0].get<double>() == 0.0);
  BOOST_TEST(tp[0][1].get<double>() == 8.0);
  BOOST_TEST(tp[1][0].get<double>() == 0.5);
  BOOST_TEST(tp[1][1].get<double>() == 0.0);
  BOOST_TEST(tp[2][0].get<double>() == 1.0);
  BOOST_TEST(tp[2][1].get<double>() == 8.0);
  // The busiest window ending in each bucket.
  auto& tp1 = j["throughput_1s"];
  BOOST_REQUIRE(tp1.size() == 3u);
  BOOST_TEST(tp1[0][1].get<double>() == 4.0);
  BOOST_TEST(tp1[1][1].get<double>() == 0.0);
  BOOST_TEST(tp1[2][1].get<double>() == 5.0);
}

BOOST_AUTO_TEST_CASE(time_series_averages_latency_and_keeps_last_samples) {
  time_series ts{1.0};
  ts.add_latency(0.2, 3.0, 2);
  ts.add_latency(0.7, 1.0, 2);
  ts.add_latency(2.5, 5.0, 1);
  ts.sample(0.1, 5, 2);
  ts.sample(0.9, 7, 3);
  ts.sample(2.1, 1, 4);
  auto j = ts.to_json();
  // Latency: only buckets with starts, mean per start.
  auto& lat = j["latency"];
  BOOST_REQUIRE(lat.size() == 2u);
  BOOST_TEST(lat[0][0].get<double>() == 0.0);
  BOOST_TEST(lat[0][1].get<double>() == 1.0);
  BOOST_TEST(lat[1][0].get<double>() == 2.0);
  BOOST_TEST(lat[1][1].get<double>() == 5.0);
  // Gauges: the last sample of each sampled bucket.
  auto& qd = j["queue_depth"];
  auto& wk = j["workers"];
  BOOST_REQUIRE(qd.size() == 2u);
  BOOST_REQUIRE(wk.size() == 2u);
  BOOST_TEST(qd[0][1].get<double>() == 7.0);
  BOOST_TEST(wk[0][1].get<double>() == 3.0);
  BOOST_TEST(qd[1][0].get<double>() == 2.0);
  BOOST_TEST(qd[1][1].get<double>() == 1.0);
  BOOST_TEST(wk[1][1].get<double>() == 4.0);
  // No completions: every throughput bucket is 0 and so is the peak.
  BOOST_TEST(ts.peak_throughput() == 0.0);
  BOOST_TEST(j["throughput"].size() == 3u);
}

BOOST_AUTO_TEST_CASE(an_empty_time_series_has_empty_series) {
  time_series ts;
  BOOST_TEST(ts.width() == 1.0);
  BOOST_TEST(ts.peak_throughput() == 0.0);
  auto j = ts.to_json();
  for (auto key :
       {"throughput", "throughput_1s", "latency", "queue_depth", "workers"}) {
    BOOST_TEST(j.contains(key), key);
    BOOST_TEST(j[key].empty(), key);
  }
}

BOOST_AUTO_TEST_CASE(
  the_parts_of_a_split_run_merge_into_the_whole_runs_figures) {
  // One run's events dealt over two parts (shards) give the figures the
  // whole run gives: the peak window spans both parts' completions.
  run_stats whole, a, b;
  whole.keep_completion_times();
  a.keep_completion_times();
  b.keep_completion_times();
  auto wa = a.worker_joined("w-0", 0, 2);
  auto wb = b.worker_joined("w-1", 0, 2);
  auto w0 = whole.worker_joined("w-0", 0, 2);
  auto w1 = whole.worker_joined("w-1", 0, 2);
  for (int i = 0; i < 10; ++i) {
    auto& part = i % 2 ? b : a;
    auto serial = i % 2 ? wb : wa;
    double t = 0.1 * i;
    for (auto* s : {&part, &whole}) {
      s->submitted(t);
      s->placement_try();
      s->first_assignment();
      s->started(0.01 * i, 1 + i % 5);
      s->completed(t + 0.5, 0.5, 0.5 + 0.01 * i);
    }
    part.worker_assigned(serial);
    part.worker_ran(serial, 0.5, true);
    whole.worker_assigned(i % 2 ? w1 : w0);
    whole.worker_ran(i % 2 ? w1 : w0, 0.5, true);
  }
  // A test handed from a to b: submitted in both, counted once.
  a.submitted(1.0);
  a.handed_over();
  b.submitted(1.0);
  b.stolen();
  b.completed(1.6, 0.5, 0.6);
  whole.submitted(1.0);
  whole.stolen();
  whole.completed(1.6, 0.5, 0.6);
  auto merged = a;
  merged.merge(b);
  auto m = merged.metrics(2, 2, 0);
  auto w = whole.metrics(2, 2, 0);
  BOOST_TEST(m.total_tests == 11u);
  BOOST_TEST(m.total_tests == w.total_tests);
  BOOST_TEST(m.completed_tests == w.completed_tests);
  BOOST_TEST(m.stolen_tests == 1u);
  // Each part alone sees at most five completions in a second; the run saw
  // ten within (0.5, 1.5].
  BOOST_TEST(a.metrics(2, 1, 0).peak_throughput <= 5.0);
  BOOST_TEST(m.peak_throughput == w.peak_throughput);
  BOOST_TEST(m.peak_throughput == 10.0);
  BOOST_TEST(m.p50_latency == w.p50_latency);
  BOOST_TEST(m.p99_latency == w.p99_latency);
  BOOST_TEST(m.makespan == w.makespan);
  BOOST_TEST(m.avg_turnaround == w.avg_turnaround, tt::tolerance(1e-12));
  BOOST_TEST(m.worker_utilization == w.worker_utilization,
             tt::tolerance(1e-12));
  BOOST_TEST(m.worker_assignment_range == w.worker_assignment_range);
  BOOST_TEST(m.peak_worker_count == 2u);
  BOOST_TEST(m.avg_scheduling_attempts == w.avg_scheduling_attempts);
  // Without the completion times the merged peak is not known: refused.
  run_stats plain;
  BOOST_CHECK_THROW(plain.merge(a), std::logic_error);
}
