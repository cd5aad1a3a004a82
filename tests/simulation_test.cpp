#define BOOST_TEST_MODULE simulation
#include <boost/test/unit_test.hpp>

#include "runtime/rng.hpp"
#include "runtime/simulation.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

using namespace alb;
namespace tt = boost::test_tools;

namespace {

template<class T>
bool one_of(const std::vector<T>& xs, const T& x) {
  return std::find(xs.begin(), xs.end(), x) != xs.end();
}

worker_profile odd_workers() {
  worker_profile p;
  p.memory_distribution = {3, 7};
  p.cuda_distribution = {0, 2};
  p.cores_distribution = {2, 6};
  p.speed_distribution = {0.5, 2};
  return p;
}

test_profile odd_tests() {
  test_profile p;
  p.memory_requirements = {0.25, 3};
  p.cuda_requirements = {0, 3};
  p.priority_distribution = {2, 5};
  p.duration_distribution = {0.7, 9};
  p.model_ids = {"gpt-neo", "resnet"};
  p.retries = 4;
  return p;
}

uint64_t total(const std::vector<submission_wave>& plan) {
  uint64_t n = 0;
  for (auto& w : plan)
    n += w.count;
  return n;
}

} // namespace

// -- drawing workers and tests
// -------------------------------------------------

BOOST_AUTO_TEST_CASE(draw_worker_uses_only_values_from_the_profile) {
  auto p = odd_workers();
  rng r{11};
  std::set<double> mems;
  std::set<int> cudas;
  for (int i = 0; i < 300; ++i) {
    auto w = draw_worker(p, r, "w" + std::to_string(i));
    BOOST_TEST(w.worker_id == "w" + std::to_string(i));
    BOOST_TEST(one_of(p.memory_distribution, w.available_memory));
    BOOST_TEST(one_of(p.cores_distribution, w.cpu_cores));
    BOOST_TEST(one_of(p.speed_distribution, w.speed));
    BOOST_TEST(w.hardware.memory.total_gb == w.available_memory);
    BOOST_TEST(w.hardware.cpu.cores == w.cpu_cores);
    auto cuda = w.available_accelerators.count("cuda")
                  ? w.available_accelerators.at("cuda")
                  : 0;
    BOOST_TEST(one_of(p.cuda_distribution, cuda));
    BOOST_TEST(w.hardware.gpu.device_count == cuda);
    // A worker offers the cuda backend exactly when it has cuda devices.
    BOOST_TEST(one_of(w.supported_backends, std::string{"cpu"}));
    BOOST_TEST(one_of(w.supported_backends, std::string{"cuda"}) == (cuda > 0));
    mems.insert(w.available_memory);
    cudas.insert(cuda);
  }
  // Every value of the distribution shows up in 300 draws.
  BOOST_TEST(mems.size() == 2u);
  BOOST_TEST(cudas.size() == 2u);
}

BOOST_AUTO_TEST_CASE(draw_worker_with_empty_distributions_uses_defaults) {
  worker_profile p;
  p.memory_distribution.clear();
  p.cuda_distribution.clear();
  p.cores_distribution.clear();
  p.speed_distribution.clear();
  rng r{1};
  auto w = draw_worker(p, r, "w");
  BOOST_TEST(w.available_memory == 8.0);
  BOOST_TEST(w.cpu_cores == 4);
  BOOST_TEST(w.speed == 1.0);
  BOOST_TEST(w.available_accelerators.empty());
}

BOOST_AUTO_TEST_CASE(draw_test_uses_only_values_from_the_profile) {
  auto p = odd_tests();
  rng r{12};
  std::set<int> prios;
  for (uint64_t i = 0; i < 300; ++i) {
    auto t = draw_test(p, r, i);
    BOOST_TEST(one_of(p.memory_requirements, t.minimum_memory));
    BOOST_TEST(one_of(p.priority_distribution, t.priority));
    BOOST_TEST(one_of(p.duration_distribution, t.expected_duration));
    BOOST_TEST(one_of(p.model_ids, t.model_id));
    auto cuda = t.required_accelerators.count("cuda")
                  ? t.required_accelerators.at("cuda")
                  : 0;
    BOOST_TEST(one_of(p.cuda_requirements, cuda));
    BOOST_TEST(t.retries == 4);
    BOOST_TEST(t.model_family == (t.model_id == "gpt-neo" ? "gpt" : "resnet"));
    prios.insert(t.priority);
  }
  BOOST_TEST(prios.size() == 2u);
}

BOOST_AUTO_TEST_CASE(draw_test_names_tests_by_index_and_honours_priority) {
  auto p = odd_tests();
  rng r{1};
  auto t = draw_test(p, r, 42, 1, "job-");
  BOOST_TEST(t.test_id == "job-0000042");
  BOOST_TEST(t.priority == 1);
  BOOST_TEST(draw_test(p, r, 7).test_id == "t0000007");
  // Past 7 digits the index is printed whole, as "%07llu" does.
  BOOST_TEST(draw_test(p, r, 1234567).test_id == "t1234567");
  BOOST_TEST(draw_test(p, r, 123456789012).test_id == "t123456789012");
  BOOST_TEST(draw_test(p, r, 0).test_id == "t0000000");
}

BOOST_AUTO_TEST_CASE(the_same_seed_gives_the_same_draws) {
  auto wp = odd_workers();
  auto tp = odd_tests();
  rng a{99};
  rng b{99};
  for (int i = 0; i < 50; ++i) {
    auto wa = draw_worker(wp, a, "w");
    auto wb = draw_worker(wp, b, "w");
    BOOST_TEST(wa.available_memory == wb.available_memory);
    BOOST_TEST(wa.cpu_cores == wb.cpu_cores);
    BOOST_TEST(wa.speed == wb.speed);
    BOOST_TEST((wa.available_accelerators == wb.available_accelerators));
    auto ta = draw_test(tp, a, static_cast<uint64_t>(i));
    auto tb = draw_test(tp, b, static_cast<uint64_t>(i));
    BOOST_TEST(ta.minimum_memory == tb.minimum_memory);
    BOOST_TEST(ta.priority == tb.priority);
    BOOST_TEST(ta.expected_duration == tb.expected_duration);
    BOOST_TEST(ta.model_id == tb.model_id);
    auto sa = simulate_attempt(1, 1, 1, 0.5, 0, a);
    auto sb = simulate_attempt(1, 1, 1, 0.5, 0, b);
    BOOST_TEST(sa.duration == sb.duration);
    BOOST_TEST(sa.success == sb.success);
  }
  auto pa = plan_submissions(1000, 30, true, a);
  auto pb = plan_submissions(1000, 30, true, b);
  BOOST_REQUIRE(pa.size() == pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    BOOST_TEST(pa[i].at == pb[i].at);
    BOOST_TEST(pa[i].count == pb[i].count);
  }
  // A different seed gives a different sequence.
  rng c{100};
  rng d{99};
  BOOST_TEST(c.next() != d.next());
}

// -- submission plans
// ----------------------------------------------------------

BOOST_AUTO_TEST_CASE(an_even_plan_spreads_every_test_over_the_duration) {
  rng r{3};
  for (uint64_t tests : {1ull, 7ull, 100ull, 5000ull, 123457ull}) {
    for (double duration : {0.005, 1.0, 60.0}) {
      BOOST_TEST_CONTEXT(tests << " tests over " << duration << " s") {
        auto plan = plan_submissions(tests, duration, false, r);
        BOOST_TEST(total(plan) == tests);
        BOOST_REQUIRE(!plan.empty());
        BOOST_TEST(plan.front().at == 0.0);
        for (size_t i = 0; i < plan.size(); ++i) {
          BOOST_TEST(plan[i].at >= 0.0);
          BOOST_TEST(plan[i].at < duration);
          BOOST_TEST(plan[i].count > 0u);
          if (i > 0)
            BOOST_TEST(plan[i].at > plan[i - 1].at);
        }
        // Waves are at most 10 ms apart-ish and never more than the tests.
        BOOST_TEST(plan.size() <= tests);
        BOOST_TEST(plan.size() <= static_cast<size_t>(duration / 0.01) + 1);
        // Evenly: wave sizes differ by at most one.
        auto [lo, hi]
          = std::minmax_element(plan.begin(), plan.end(), [](auto& a, auto& b) {
              return a.count < b.count;
            });
        BOOST_TEST(hi->count - lo->count <= 1u);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(an_even_plan_of_many_tests_reaches_the_end_of_the_window) {
  rng r{3};
  auto plan = plan_submissions(10000, 10, false, r);
  BOOST_TEST(plan.back().at >= 9.9);
  BOOST_TEST(plan.back().at < 10.0);
}

BOOST_AUTO_TEST_CASE(a_burst_plan_has_few_large_waves) {
  rng r{4};
  for (uint64_t tests : {1ull, 19ull, 50ull, 100ull, 1000ull, 99999ull}) {
    BOOST_TEST_CONTEXT(tests << " tests") {
      auto plan = plan_submissions(tests, 60, true, r);
      BOOST_TEST(total(plan) == tests);
      BOOST_TEST(!plan.empty());
      BOOST_TEST(plan.size() <= 5u);
      for (auto& w : plan) {
        BOOST_TEST(w.at >= 0.0);
        BOOST_TEST(w.at < 60.0);
        BOOST_TEST(w.count > 0u);
      }
      if (tests >= 100)
        BOOST_TEST(plan.size() == 5u);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_zero_duration_submits_everything_at_once) {
  rng r{5};
  for (bool burst : {false, true}) {
    auto plan = plan_submissions(250, 0, burst, r);
    BOOST_REQUIRE(plan.size() == 1u);
    BOOST_TEST(plan[0].at == 0.0);
    BOOST_TEST(plan[0].count == 250u);
  }
  BOOST_TEST(plan_submissions(0, 10, false, r).empty());
  BOOST_TEST(plan_submissions(0, 10, true, r).empty());
}

// -- spike split
// ---------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_spike_split_adds_up_to_the_total_asked_for) {
  // The reference: --tests is the number of tests to submit.
  auto d = split_spike_load(100, 3, 2.0);
  BOOST_TEST(d.per_spike == 29u);
  BOOST_TEST(d.base == 13u);
  auto e = split_spike_load(300, 3, 2.0);
  BOOST_TEST(e.base + 3 * e.per_spike == 300u);
  BOOST_TEST(e.per_spike == 86u);
  for (uint64_t total : {1ull, 2ull, 7ull, 100ull, 1001ull, 999999ull})
    for (int spikes : {0, 1, 3, 10})
      for (double size : {0.0, 0.5, 1.0, 2.0, 50.0}) {
        auto s = split_spike_load(total, spikes, size);
        BOOST_TEST(s.base + static_cast<uint64_t>(spikes) * s.per_spike
                     == total,
                   total << " " << spikes << " " << size);
        if (spikes == 0 || size == 0)
          BOOST_TEST(s.per_spike == 0u);
      }
}

// -- churn
// ---------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(churn_happens_within_the_duration_in_time_order) {
  rng r{6};
  for (int run = 0; run < 100; ++run) {
    auto script = plan_churn(100, 20, r);
    BOOST_REQUIRE(script.size() == 4u);
    int adds = 0;
    for (size_t i = 0; i < script.size(); ++i) {
      BOOST_TEST(script[i].at > 0.0);
      BOOST_TEST(script[i].at < 100.0);
      BOOST_TEST(script[i].fraction > 0.0);
      BOOST_TEST(script[i].fraction <= 1.0);
      if (i > 0)
        BOOST_TEST(script[i].at >= script[i - 1].at);
      adds += script[i].action == churn_event::kind::add ? 1 : 0;
    }
    BOOST_TEST(adds == 2);
  }
  BOOST_TEST(plan_churn(0, 20, r).empty());
  BOOST_TEST(plan_churn(100, 0, r).empty());
}

// -- the execution model
// -------------------------------------------------------

BOOST_AUTO_TEST_CASE(an_attempt_longer_than_its_timeout_times_out_at_it) {
  rng r{8};
  for (int i = 0; i < 100; ++i) {
    auto a = simulate_attempt(10, 1, 1, 0, 5, r);
    BOOST_TEST(a.timed_out);
    BOOST_TEST(!a.success);
    BOOST_TEST(a.duration == 5.0);
  }
  // Well within the timeout: no timeout.
  for (int i = 0; i < 100; ++i) {
    auto a = simulate_attempt(1, 1, 1, 0, 5, r);
    BOOST_TEST(!a.timed_out);
    BOOST_TEST(a.success);
  }
}

BOOST_AUTO_TEST_CASE(failure_rate_zero_never_fails_and_one_always_fails) {
  rng r{9};
  for (int i = 0; i < 200; ++i) {
    auto ok = simulate_attempt(1, 1, 1, 0, 0, r);
    BOOST_TEST(ok.success);
    BOOST_TEST(!ok.timed_out);
    auto bad = simulate_attempt(1, 1, 1, 1, 0, r);
    BOOST_TEST(!bad.success);
    BOOST_TEST(!bad.timed_out);
  }
}

BOOST_AUTO_TEST_CASE(an_attempt_runs_the_expected_time_scaled_with_jitter) {
  rng r{10};
  for (int i = 0; i < 200; ++i) {
    // Speed 2 at half performance: nominal pace, 4 s +- 20%.
    auto a = simulate_attempt(4, 2, 0.5, 0, 0, r);
    BOOST_TEST(a.duration >= 4 * 0.8 - 1e-12);
    BOOST_TEST(a.duration <= 4 * 1.2 + 1e-12);
    // Twice as fast.
    auto b = simulate_attempt(4, 2, 1, 0, 0, r);
    BOOST_TEST(b.duration >= 2 * 0.8 - 1e-12);
    BOOST_TEST(b.duration <= 2 * 1.2 + 1e-12);
  }
  // A zero speed does not divide by zero.
  auto z = simulate_attempt(1, 0, 0, 0, 0, r);
  BOOST_TEST(std::isfinite(z.duration));
}

BOOST_AUTO_TEST_CASE(warm_up_ramps_linearly_to_full_speed) {
  worker_profile p;
  p.warmup_seconds = 10;
  p.warmup_performance = 0.5;
  BOOST_TEST(warmup_level(p, 0) == 0.5, tt::tolerance(1e-12));
  BOOST_TEST(warmup_level(p, 5) == 0.75, tt::tolerance(1e-12));
  BOOST_TEST(warmup_level(p, 10) == 1.0);
  BOOST_TEST(warmup_level(p, 100) == 1.0);
  BOOST_TEST(warmup_level(p, -1) == 0.5, tt::tolerance(1e-12));
  p.warmup_seconds = 0;
  BOOST_TEST(warmup_level(p, 0) == 1.0);
}

BOOST_AUTO_TEST_CASE(a_tests_jitter_is_its_own_and_not_its_workers) {
  // Every worker of a run shares the jitter seed, so a test's draw is a
  // function of the test alone: placement cannot change how long it runs.
  double lo = 2, hi = 0;
  for (int i = 0; i < 500; ++i) {
    auto id = "t" + std::to_string(i);
    auto j = simulated_jitter(id, 42);
    BOOST_TEST(j == simulated_jitter(id, 42));
    BOOST_TEST(j >= simulated_jitter_low);
    BOOST_TEST(j < simulated_jitter_high);
    lo = std::min(lo, j);
    hi = std::max(hi, j);
  }
  // It spreads over the range, and another seed draws other values.
  BOOST_TEST(lo < 0.85);
  BOOST_TEST(hi > 1.15);
  BOOST_TEST(simulated_jitter("t1", 42) != simulated_jitter("t1", 43));
  // Given a factor, the attempt uses it whatever the generator holds.
  rng a{1}, b{2};
  BOOST_TEST(simulate_attempt(4, 2, 1, 0, 0, a, 1.1).duration == 2 * 1.1,
             tt::tolerance(1e-12));
  BOOST_TEST(simulate_attempt(4, 2, 1, 0, 0, b, 1.1).duration == 2 * 1.1,
             tt::tolerance(1e-12));
}
