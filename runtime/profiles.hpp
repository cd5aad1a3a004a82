#pragma once

// Simulation profiles and run settings shared by the configuration loader, the
// simulated cluster and the commands. A "distribution" is, as in the original,
// a list of values drawn uniformly at random.

#include <string>
#include <vector>

namespace alb {

/// Size of a run: the original's `test_configurations` entries.
struct test_configuration {
  /// Simulated workers at the start.
  int workers = 20;
  /// Tests to submit.
  int tests = 100;
  /// Submission window in seconds.
  double duration = 60;
  /// What this size is for.
  std::string description;
};

/// How simulated workers are drawn: the original's `worker_profiles`.
struct worker_profile {
  /// Memory per worker in GB, drawn uniformly.
  std::vector<double> memory_distribution{4, 8, 16, 32};
  /// CUDA devices per worker, drawn uniformly.
  std::vector<int> cuda_distribution{0, 1, 2, 4};
  /// CPU cores per worker (concurrent test slots), drawn uniformly.
  std::vector<int> cores_distribution{4, 8};
  /// Relative speed per worker (1 = nominal), drawn uniformly.
  std::vector<double> speed_distribution{1.0};
  /// Probability that one test attempt fails on such a worker.
  double failure_rate = 0.0;
  /// Seconds after joining during which the worker runs below full speed.
  double warmup_seconds = 0.0;
  /// Performance level while warming up (0-1].
  double warmup_performance = 0.5;
  /// Seconds before leaving during which the worker runs below full speed.
  double cooldown_seconds = 0.0;
  /// Amplitude of background CPU load drift in percent (0 = none).
  double background_load = 0.0;
  /// What this profile models.
  std::string description;
};

/// How simulated tests are drawn: the original's `test_profiles`.
struct test_profile {
  /// Memory needed per test in GB, drawn uniformly.
  std::vector<double> memory_requirements{0.5, 1, 2, 4, 8};
  /// CUDA devices needed per test, drawn uniformly.
  std::vector<int> cuda_requirements{0, 0, 0, 1, 2};
  /// Priorities (1 = highest ... 5), drawn uniformly.
  std::vector<int> priority_distribution{1, 2, 2, 3, 3, 3, 4, 4, 5};
  /// Expected durations in seconds, drawn uniformly.
  std::vector<double> duration_distribution{0.05, 0.1, 0.2, 0.5};
  /// Model ids, drawn uniformly.
  std::vector<std::string> model_ids{"bert-base-uncased", "t5-small",
                                     "vit-base", "whisper-tiny", "llama-7b"};
  /// Retries per test after a failure.
  int retries = 1;
  /// What this profile models.
  std::string description;
};

} // namespace alb
