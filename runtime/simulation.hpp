#pragma once

// Deterministic pieces of a simulated run: drawing workers and tests from
// profiles, planning submissions and churn, and the execution model of a
// simulated worker. Pure functions of their inputs and a seeded generator.

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/model.hpp"
#include "runtime/profiles.hpp"
#include "runtime/rng.hpp"

namespace alb {

/// Tests to submit at one moment.
struct submission_wave {
  /// Seconds since the run started.
  double at = 0;
  /// Tests in the wave.
  uint64_t count = 0;
  /// Priority for all of them (0 = drawn from the profile).
  int priority = 0;
};

/// A scripted change to the set of workers.
struct churn_event {
  /// What happens.
  enum class kind : uint8_t {
    /// Workers leave cleanly (their queued tests go back to the queue).
    remove,
    /// Workers die abruptly (SIGKILL-like: the actor is killed): those
    /// holding the most tests at that moment.
    kill,
    /// New workers join.
    add,
  };
  /// Seconds since the run started.
  double at = 0;
  /// What happens.
  kind action = kind::add;
  /// Workers affected: this fraction of the workers present ...
  double fraction = 0;
  /// ... or, when fraction is 0, this many.
  uint64_t count = 0;
};

/// Draws one worker's capabilities from `p`.
worker_capabilities draw_worker(const worker_profile& p, rng& r,
                                std::string worker_id);

/// Draws the test with sequence number `index` from `p`; `priority` 0 means
/// drawn from the profile.
test_requirements draw_test(const test_profile& p, rng& r, uint64_t index,
                            int priority = 0, const std::string& prefix = "t");

/// Spreads `tests` over `duration` seconds: evenly in small waves, or in a few
/// large bursts when `burst` is set. A zero duration submits everything at 0.
std::vector<submission_wave> plan_submissions(uint64_t tests, double duration,
                                              bool burst, rng& r);

/// How `alb spike` splits its `--tests` total.
struct spike_split {
  /// Tests of the even base load.
  uint64_t base = 0;
  /// Tests of each spike.
  uint64_t per_spike = 0;
};

/// Splits `total` tests into a base load and `spikes` spikes each
/// `spike_size` times the base: base + spikes x per_spike == total exactly
/// (the rounding goes to the base).
spike_split split_spike_load(uint64_t total, int spikes, double spike_size);

/// The `--dynamic` script: workers leave, die and join during the run.
std::vector<churn_event> plan_churn(double duration, int workers, rng& r);

/// Least factor a simulated attempt's duration is drawn with (see
/// `simulate_attempt`): no schedule of simulated tests runs one faster.
inline constexpr double simulated_jitter_low = 0.8;
/// Largest factor a simulated attempt's duration is drawn with.
inline constexpr double simulated_jitter_high = 1.2;

/// The true/expected duration ratio of the test called `test_id` in a
/// workload whose estimates are noisy: a lognormal of log-standard
/// deviation `sigma` and mean 1, a pure function of (`test_id`, `seed`) so a
/// test keeps it across attempts and a benchmark can compute it too. 1 for
/// `sigma` <= 0.
double duration_noise_factor(const std::string& test_id, uint64_t seed,
                             double sigma);

/// How a simulated worker executes one test.
struct simulated_attempt {
  /// Seconds it runs (until the timeout when it times out).
  double duration = 0;
  /// Whether it passes.
  bool success = true;
  /// Whether it hit its timeout.
  bool timed_out = false;
};

/// The jitter factor of the test called `test_id` in a run whose jitter
/// seed is `seed`: uniform in [simulated_jitter_low, simulated_jitter_high],
/// a pure function of (`test_id`, `seed`). Simulated workers of one run
/// share the seed, so a test's draw does not depend on where or when it
/// runs: every strategy faces the same draws, and a bound that knows them
/// (`alb benchmark`) is one no schedule of that run can beat.
double simulated_jitter(const std::string& test_id, uint64_t seed);

/// Simulates one attempt: the expected duration scaled by the worker's speed
/// and current performance level, with +-20% jitter, failing with
/// probability `failure_rate` and stopping at `timeout` (0 = none). The
/// jitter factor is `jitter` when it is positive (see `simulated_jitter`),
/// else drawn from `r`.
simulated_attempt simulate_attempt(double expected_duration, double speed,
                                   double performance_level,
                                   double failure_rate, double timeout, rng& r,
                                   double jitter = 0);

/// Performance level of a worker `age` seconds after it joined (warm-up).
double warmup_level(const worker_profile& p, double age);

/// The same from the profile's two warm-up figures alone.
double warmup_level(double warmup_seconds, double warmup_performance,
                    double age);

} // namespace alb
