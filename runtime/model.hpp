#pragma once

// The domain model of the load balancer: what a worker can do, how loaded it
// is, what a test needs, and what happened to it. Plain data, no CAF, so that
// every layer (core, actors, embedding API, persistence) shares one vocabulary.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace alb {

/// CPU part of a worker's hardware description.
struct cpu_specs {
  /// Physical cores.
  int cores = 0;
  /// Nominal clock frequency in MHz.
  double frequency_mhz = 0;
};

/// Memory part of a worker's hardware description.
struct memory_specs {
  /// Installed memory in GB.
  double total_gb = 0;
  /// Memory free for tests in GB.
  double available_gb = 0;
};

/// GPU part of a worker's hardware description.
struct gpu_specs {
  /// Number of GPU devices.
  int device_count = 0;
  /// Whether CUDA is usable on this worker.
  bool cuda_available = false;
};

/// The original's `hardware_specs` dictionary, typed.
struct hardware_specs {
  /// CPU description.
  cpu_specs cpu;
  /// Memory description.
  memory_specs memory;
  /// GPU description.
  gpu_specs gpu;
};

/// Static description of a worker: what it can hold and run.
struct worker_capabilities {
  /// Unique worker name.
  std::string worker_id;
  /// Host the worker runs on.
  std::string hostname;
  /// Node (`alb node --name`) the worker belongs to; the coordinator sets
  /// it from the node's join. Workers of one node share its machine and
  /// files, so a speculative copy of a real command goes to another node
  /// only. "" = not known (a worker of this process): no copies of real
  /// commands there.
  std::string node;
  /// Hardware description.
  hardware_specs hardware;
  /// Installed software and versions, e.g. {"torch": "2.3"}.
  std::map<std::string, std::string> software_versions;
  /// Execution backends this worker offers, e.g. "cpu", "cuda", "onnx".
  std::vector<std::string> supported_backends;
  /// Accelerators by type and count, e.g. {"cuda": 2}.
  std::map<std::string, int> available_accelerators;
  /// Device indices behind `available_accelerators` by type, e.g.
  /// {"cuda": {0, 1}} (what CUDA_VISIBLE_DEVICES names); a type missing
  /// here has the indices 0 .. count-1.
  std::map<std::string, std::vector<int>> accelerator_devices;
  /// Memory available to tests in GB (the capacity reservations draw from).
  double available_memory = 0;
  /// Free disk in GB.
  double available_disk = 0;
  /// CPU cores usable by tests.
  int cpu_cores = 0;
  /// Hardware threads.
  int cpu_threads = 0;
  /// Network bandwidth in Gbit/s.
  double network_bandwidth = 0;
  /// Storage capacity in GB.
  double storage_capacity = 0;
  /// Tests that may run at once; 0 means one per CPU core (at least one).
  int max_concurrent_tests = 0;
  /// Relative speed (1 = nominal); simulated workers run tests this much
  /// faster, real workers learn it from history.
  double speed = 1.0;
  /// Free-form labels (rack, pool, ...).
  std::vector<std::string> tags;
};

/// Live load of a worker as it reports it.
struct worker_load {
  /// Worker this report belongs to.
  std::string worker_id;
  /// CPU utilization in percent (0-100).
  double cpu_utilization = 0;
  /// Memory utilization in percent.
  double memory_utilization = 0;
  /// GPU utilization in percent.
  double gpu_utilization = 0;
  /// I/O utilization in percent.
  double io_utilization = 0;
  /// Network utilization in percent.
  double network_utilization = 0;
  /// Tests running now.
  int active_tests = 0;
  /// Tests assigned but not started (the worker's local queue).
  int queued_tests = 0;
  /// Depth of the worker's local queue including running tests.
  int queue_depth = 0;
  /// Memory reserved by assigned tests in GB.
  double reserved_memory = 0;
  /// Accelerators reserved by assigned tests.
  std::map<std::string, int> reserved_accelerators;
  /// True while the worker warms up (performance below nominal).
  bool warming_up = false;
  /// True while the worker cools down (performance below nominal).
  bool cooling_down = false;
  /// Current performance relative to nominal (1 = full speed).
  double performance_level = 1.0;
};

/// What a test needs and how it should be treated.
struct test_requirements {
  /// Unique test name.
  std::string test_id;
  /// Model under test (affinity and history key).
  std::string model_id;
  /// Model family, e.g. "bert" (affinity fallback).
  std::string model_family;
  /// Kind of test, e.g. "unit", "benchmark" (strategy per type).
  std::string test_type;
  /// Memory the test needs in GB.
  double minimum_memory = 0;
  /// Backend the worker must offer ("" = any).
  std::string required_backend;
  /// Backend preferred when several workers fit ("" = none).
  std::string preferred_backend;
  /// Accelerators needed by type and count.
  std::map<std::string, int> required_accelerators;
  /// Software the worker must have installed: each entry "NAME" or
  /// "NAME OP VERSION" with OP one of = == != < <= > >= (see
  /// runtime/constraints.hpp), e.g. "torch >= 2.1".
  std::vector<std::string> required_software;
  /// Tags the worker must all carry (its `tags`).
  std::vector<std::string> required_tags;
  /// Expected execution time in seconds (simulation uses it as the mean).
  double expected_duration = 0;
  /// 1 = highest ... 5 = lowest.
  int priority = 3;
  /// Execution time limit in seconds (0 = none).
  double timeout = 0;
  /// Further attempts after a failure.
  int retries = 0;
  /// Tests sharing a non-empty key never run at the same time.
  std::string concurrency_key;
  /// Longest wait for a worker that can hold the test, in seconds
  /// (0 = the scheduler's default).
  double wait_limit = 0;
  /// Whether the scheduler may run a copy of it on a faster worker when it
  /// straggles (first result wins, the other copy is stopped); false for
  /// tests with side effects that must run once at a time.
  bool speculate = true;
};

/// How to run a real test: carried with the test's record from submission
/// to the worker's executor, the only place that reads it (DESIGN §3).
/// Empty = a simulated test.
struct test_run {
  /// Command line (argv).
  std::vector<std::string> command;
  /// Extra environment variables.
  std::map<std::string, std::string> env;
  /// Working directory ("" = the worker's).
  std::string cwd;
  /// Cap on stdout and stderr together, bytes (0 = the node's default).
  uint64_t max_output = 0;

  /// Whether there is nothing to run (simulated).
  bool empty() const {
    return command.empty() && env.empty() && cwd.empty() && max_output == 0;
  }
};

/// Life-cycle state of a submitted test.
enum class test_status : uint8_t {
  /// Waiting in the scheduler's queue.
  pending,
  /// Placed on a worker, not started yet.
  assigned,
  /// Running on a worker.
  running,
  /// Ended successfully.
  completed,
  /// Ended unsuccessfully (after all retries) or never placeable.
  failed,
  /// Withdrawn before it ended.
  cancelled,
};

/// Returns the lower-case name of `x`.
const char* to_string(test_status x);

/// Returns whether `x` is an end state.
inline bool is_final(test_status x) {
  return x == test_status::completed || x == test_status::failed
         || x == test_status::cancelled;
}

/// Outcome of one execution attempt, as the worker reports it.
struct test_result {
  /// Test the result belongs to.
  std::string test_id;
  /// Worker that ran it.
  std::string worker_id;
  /// Whether the attempt succeeded.
  bool success = false;
  /// Execution time in seconds.
  double execution_time = 0;
  /// Why it failed ("" on success).
  std::string error;
  /// Exit status of a real command (0 for simulated tests).
  int exit_code = 0;
  /// Tail of the command's output, if any.
  std::string output_tail;
};

/// Where a test went and what became of it. Times are seconds on the
/// scheduler's clock since the run started; negative means "not yet".
struct assignment {
  /// Test assigned.
  std::string test_id;
  /// Worker holding it ("" while pending).
  std::string worker_id;
  /// When it was submitted.
  double submitted_at = -1;
  /// When it was last placed on a worker.
  double assigned_at = -1;
  /// When it started running.
  double started_at = -1;
  /// When it ended.
  double completed_at = -1;
  /// Current state.
  test_status status = test_status::pending;
  /// Placements so far (requeues and retries add one each).
  int attempts = 0;
  /// Times it was migrated (moved, not started, from a busy worker's
  /// queue by the periodic rebalance).
  int migrated = 0;
  /// Times it was stolen (moved, not started, to a worker that ran idle).
  int stolen = 0;
  /// Whether it got a speculative copy on another worker.
  bool speculated = false;
  /// Whether it ended with that copy's result (its own run was stopped).
  bool speculation_won = false;
  /// Whether it ended successfully.
  bool success = false;
  /// Execution time of the last attempt in seconds.
  double execution_time = 0;
  /// Why it failed or was cancelled.
  std::string error;
};

} // namespace alb
