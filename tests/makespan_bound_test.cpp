#define BOOST_TEST_MODULE makespan_bound
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "runtime/makespan_bound.hpp"
#include "runtime/rng.hpp"

using namespace alb;

namespace {

bool near(double a, double b) {
  return std::abs(a - b) <= 1e-6 * std::max(1.0, std::abs(b));
}

/// The optimal non-preemptive makespan of `works` on slots of `speeds`, all
/// released at once, by trying every assignment (tiny instances only).
double brute_force_optimum(const std::vector<double>& works,
                           const std::vector<double>& speeds) {
  std::vector<double> load(speeds.size(), 0);
  double best = 1e300;
  std::function<void(size_t)> place = [&](size_t j) {
    if (j == works.size()) {
      double m = 0;
      for (size_t i = 0; i < speeds.size(); ++i)
        m = std::max(m, load[i] / speeds[i]);
      best = std::min(best, m);
      return;
    }
    for (size_t i = 0; i < speeds.size(); ++i) {
      load[i] += works[j];
      place(j + 1);
      load[i] -= works[j];
    }
  };
  place(0);
  return best;
}

} // namespace

BOOST_AUTO_TEST_CASE(preemptive_part_is_the_known_optimum) {
  // McNaughton: three jobs of 3 on two unit slots, preemptive optimum 4.5.
  BOOST_TEST(near(preemptive_uniform_bound({3, 3, 3}, {1, 1}), 4.5));
  // One job cannot use two slots at once: 4 on speeds {2, 1} needs 2.
  BOOST_TEST(near(preemptive_uniform_bound({4}, {2, 1}), 2.0));
  // Two jobs of 4 on speeds {3, 1}: the preemptive optimum shares both slots
  // (8 / 4 = 2), less than any whole-job schedule (8/3).
  BOOST_TEST(near(preemptive_uniform_bound({4, 4}, {1, 3}), 2.0));
  // The longest job on the fastest slot dominates: {6, 2} on {2, 1} is 3.
  BOOST_TEST(near(preemptive_uniform_bound({2, 6}, {1, 2}), 3.0));
  BOOST_TEST(preemptive_uniform_bound({}, {1}) == 0.0);
  BOOST_TEST(preemptive_uniform_bound({1}, {}) == 0.0);
}

BOOST_AUTO_TEST_CASE(packing_part_is_the_known_non_preemptive_optimum) {
  // Three whole jobs of 3 on two unit slots: one slot runs two, 6 (the
  // preemptive optimum, 4.5, is below it).
  auto b = packing_uniform_bound({3, 3, 3}, {1, 1});
  BOOST_TEST(near(b, 6.0));
  BOOST_TEST(b <= 6.0);
  // Two jobs of 4 on speeds {3, 1}: both on the fast slot, 8/3.
  BOOST_TEST(near(packing_uniform_bound({4, 4}, {3, 1}), 8.0 / 3));
  // More long tests than fast slots: five 10 s tests, four slots of 4x and
  // many of 0.5x: one 4x slot runs two (5 s) unless one goes to 0.5x (20 s).
  std::vector<double> speeds(4, 4.0);
  speeds.insert(speeds.end(), 16, 0.5);
  BOOST_TEST(near(packing_uniform_bound({10, 10, 10, 10, 10}, speeds), 5.0));
  // Preemptively, the five tests over the five fastest slots: 50 / 16.5.
  BOOST_TEST(
    near(preemptive_uniform_bound({10, 10, 10, 10, 10}, speeds), 50.0 / 16.5));
}

BOOST_AUTO_TEST_CASE(accelerator_part_counts_only_the_slots_with_devices) {
  // Two GPU tests of 2 s; the only GPU is on a slow machine with one
  // device: they run one after the other there, 4 s, however fast the
  // CPU-only machine is.
  std::vector<bound_machine> machines{{1.0, 4, 1, 64}, {4.0, 4, 0, 64}};
  std::vector<bound_job> jobs{{0, 2, 1, 1}, {0, 2, 1, 1}};
  auto b = compute_makespan_bound(jobs, machines);
  BOOST_TEST(near(b.accelerator, 4.0));
  BOOST_TEST(near(b.total, 4.0));
  BOOST_TEST(b.preemptive < 1.0);
}

BOOST_AUTO_TEST_CASE(memory_part_is_the_known_optimum) {
  // Four 4 GB tests of 1 s on one 8 GB machine with ten slots: two at a
  // time, 2 s; slots alone would allow 1 s.
  std::vector<bound_machine> machines{{1.0, 10, 0, 8}};
  std::vector<bound_job> jobs(4, bound_job{0, 1, 0, 4});
  auto b = compute_makespan_bound(jobs, machines);
  BOOST_TEST(near(b.memory, 2.0));
  BOOST_TEST(near(b.total, 2.0));
  BOOST_TEST(near(memory_time_bound(jobs, machines), 2.0));
}

BOOST_AUTO_TEST_CASE(release_times_count_from_the_latest_that_binds) {
  // A short test at 0 and a long one released at 10 on one slot: nothing
  // can finish before 12.
  std::vector<bound_machine> machines{{1.0, 1, 0, 8}};
  std::vector<bound_job> jobs{{10, 2, 0, 0}, {0, 1, 0, 0}};
  auto b = compute_makespan_bound(jobs, machines);
  BOOST_TEST(near(b.total, 12.0));
  BOOST_TEST(near(b.release, 10.0));
  // bound_of counts release times from the earliest submission.
  test_requirements t1, t2;
  t1.expected_duration = 1;
  t2.expected_duration = 2;
  worker_capabilities w;
  w.speed = 1;
  w.max_concurrent_tests = 1;
  w.available_memory = 8;
  auto c = bound_of({w}, {{5, t1}, {15, t2}}, 1.0);
  BOOST_TEST(near(c.total, 12.0));
  // The work factor scales every test (the jitter's lower end).
  BOOST_TEST(near(bound_of({w}, {{0, t1}, {0, t2}}, 0.8).total, 2.4));
}

BOOST_AUTO_TEST_CASE(no_schedule_of_random_tiny_instances_beats_the_bound) {
  // Property: the bound never exceeds the true optimum, found by brute
  // force over every assignment of whole jobs to slots.
  rng r{42};
  int tight = 0;
  for (int round = 0; round < 300; ++round) {
    std::vector<double> speeds;
    auto m = 1 + r.next() % 3;
    for (size_t i = 0; i < m; ++i)
      speeds.push_back(r.pick(std::vector<double>{0.5, 1, 2, 4}));
    std::vector<double> works;
    auto n = 1 + r.next() % 6;
    for (size_t i = 0; i < n; ++i)
      works.push_back(r.pick(std::vector<double>{1, 2, 5, 10}) * 0.8);
    auto opt = brute_force_optimum(works, speeds);
    std::vector<bound_machine> machines;
    for (auto s : speeds)
      machines.push_back({s, 1, 0, 0});
    std::vector<bound_job> jobs;
    for (auto w : works)
      jobs.push_back({0, w, 0, 0});
    auto b = compute_makespan_bound(jobs, machines).total;
    BOOST_TEST(b <= opt * (1 + 1e-9), "bound " << b << " > optimum " << opt);
    if (near(b, opt))
      ++tight;
  }
  // And it is not trivially low: most tiny instances meet it exactly.
  BOOST_TEST(tight > 150);
}
