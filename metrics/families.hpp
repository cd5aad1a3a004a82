#pragma once

// Every alb metric family, defined in one place: name, type, HELP text, label
// names, buckets, and the children whose label sets are known in advance.
// Internal to metrics/ (it pulls in prometheus-cpp headers): other components
// include registry.hpp / prometheus_observer.hpp / server.hpp instead.
//
// Conventions: `alb_` prefix (process metrics use the standard `process_`
// names instead), counters end in `_total`, durations are `_seconds`, values
// from 0 to 1 end in `_ratio`, no family holds a total beside its parts (a
// `sum()` over any family counts nothing twice), every label has a bounded
// value set (priority 1-5, failure reason, strategy names up to
// `max_strategy_labels`, worker ids up to the observer's `max_worker_series`).
// Children known in advance exist from the start with value 0, so queries over
// them return a series even in runs where the event never happens.

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace alb::metrics::detail {

/// Priorities run from 1 (highest) to this; others are clamped into range.
inline constexpr std::size_t priority_levels = 5;

/// Number of `alb::failure_kind` values.
inline constexpr std::size_t failure_kinds = 4;

/// Failure kinds counted in alb_tests_failed_total{reason}: all but
/// `cancelled` (the last), which has a family of its own.
inline constexpr std::size_t failure_reasons = failure_kinds - 1;

/// Values of the `state` label of alb_queue_depth, in this index order: a
/// waiting test is in exactly one of them.
inline constexpr std::array<std::string_view, 3> queue_states = {
  "ready",    // in the priority queue, placed once a slot frees
  "parked",   // no worker can hold it now (resources)
  "key_wait", // its concurrency key is held by another test
};

/// Values of the `reason` label of alb_connections_refused_total (the
/// coordinator's guard, actors/basp_guard.hpp), in this index order.
inline constexpr std::array<std::string_view, 6> refusal_reasons = {
  "handshake_timeout", // handshake (CAF/TLS, then join or hello) too slow
  "address_cap",       // closed to make room: its address had too many
  "total_cap",         // closed to make room: too many in their handshake
  "connection_cap",    // refused: too many connections at once
  "bad_frame",         // malformed or oversized frame, no handshake first
  "closed_early",      // closed before its handshake was over
};

/// Strategy label values registered at start (at 0), in this order.
inline constexpr std::array<std::string_view, 10> known_strategies = {
  "round_robin",    "weighted_round_robin",
  "least_loaded",   "performance_based",
  "priority_based", "affinity_based",
  "adaptive",       "composite",
  "power_of_two",   "best_fit",
};

/// Most distinct strategy label values per family; further names map to
/// "other" so a buggy caller cannot blow up cardinality.
inline constexpr std::size_t max_strategy_labels = 24;

/// A counter family labelled by strategy, with its children cached.
/// Lookup compares at most `max_strategy_labels` short strings and allocates
/// only the first time a name is seen.
class strategy_counters {
public:
  /// Registers the known strategies and "other" on `family`.
  explicit strategy_counters(prometheus::Family<prometheus::Counter>& family);

  /// Returns the child for `name` ("other" once the table is full).
  prometheus::Counter& get(std::string_view name);

private:
  prometheus::Family<prometheus::Counter>& family_;
  // Several observers (scheduler shards) may share one registry.
  std::mutex mtx_;
  std::array<std::string, max_strategy_labels> names_;
  std::array<prometheus::Counter*, max_strategy_labels> counters_{};
  std::size_t size_ = 0;
  prometheus::Counter* other_ = nullptr;
};

/// Something holding counts not yet in the families (an observer's local,
/// single-writer counters), flushed before each scrape.
class flushable {
public:
  virtual ~flushable() = default;
  /// Adds everything counted since the last flush to the families. Called
  /// with `families::mtx` held.
  virtual void flush() = 0;
};

/// Handles of every family and of the children known in advance.
struct families {
  /// Creates every family on `reg`.
  explicit families(prometheus::Registry& reg);

  // -- tests -----------------------------------------------------------------

  /// alb_tests_submitted_total{priority}.
  std::array<prometheus::Counter*, priority_levels> submitted{};
  /// alb_tests_assigned_total{priority}.
  std::array<prometheus::Counter*, priority_levels> assigned{};
  /// alb_tests_completed_total{priority}.
  std::array<prometheus::Counter*, priority_levels> completed{};
  /// alb_tests_failed_total{reason}, indexed by `alb::failure_kind` (no
  /// `cancelled` child).
  std::array<prometheus::Counter*, failure_reasons> failed{};
  /// alb_tests_cancelled_total{priority}.
  std::array<prometheus::Counter*, priority_levels> cancelled{};
  /// alb_tests_retried_total{priority}.
  std::array<prometheus::Counter*, priority_levels> retried{};
  /// alb_tests_requeued_total{priority}.
  std::array<prometheus::Counter*, priority_levels> requeued{};
  /// alb_tests_migrated_total.
  prometheus::Counter* migrated = nullptr;
  /// alb_tests_stolen_total.
  prometheus::Counter* stolen = nullptr;
  /// alb_tests_speculated_total.
  prometheus::Counter* speculated = nullptr;
  /// alb_speculation_wins_total.
  prometheus::Counter* speculation_wins = nullptr;
  /// alb_assignment_wait_seconds.
  prometheus::Histogram* assignment_wait = nullptr;
  /// alb_test_duration_seconds.
  prometheus::Histogram* test_duration = nullptr;

  // -- queue and cluster state (gauges from the scheduler's snapshot) -------

  /// alb_queue_depth{priority,state}, indexed [priority - 1][state] with
  /// states in `queue_states` order.
  std::array<std::array<prometheus::Gauge*, queue_states.size()>,
             priority_levels>
    queue_depth{};
  /// alb_tests_in_flight.
  prometheus::Gauge* in_flight = nullptr;
  /// alb_workers{state="busy"}.
  prometheus::Gauge* workers_busy = nullptr;
  /// alb_workers{state="idle"}.
  prometheus::Gauge* workers_idle = nullptr;
  /// alb_worker_mean_load_ratio.
  prometheus::Gauge* load_mean = nullptr;
  /// alb_workers_joined_total.
  prometheus::Counter* workers_joined = nullptr;
  /// alb_workers_left_total{reason="left"}.
  prometheus::Counter* workers_left = nullptr;
  /// alb_workers_left_total{reason="lost"}.
  prometheus::Counter* workers_lost = nullptr;
  /// alb_workers_untracked: registered workers without per-worker series.
  prometheus::Gauge* workers_untracked = nullptr;
  /// alb_nodes_connected.
  prometheus::Gauge* nodes = nullptr;
  /// alb_connections_refused_total{reason}, in `refusal_reasons` order.
  std::array<prometheus::Counter*, 6> connections_refused{};
  /// alb_node_heartbeat_timeouts_total.
  prometheus::Counter* nodes_timed_out = nullptr;

  // -- per worker (children created when a worker joins) --------------------

  /// alb_worker_load_ratio{worker}.
  prometheus::Family<prometheus::Gauge>* worker_load = nullptr;
  /// alb_worker_active_tests{worker}.
  prometheus::Family<prometheus::Gauge>* worker_active = nullptr;
  /// alb_worker_assignments_total{worker}.
  prometheus::Family<prometheus::Counter>* worker_assignments = nullptr;
  /// alb_worker_completions_total{worker}.
  prometheus::Family<prometheus::Counter>* worker_completions = nullptr;
  /// Per-worker series in existence, over all observers of this registry.
  std::size_t worker_series = 0;

  // -- observers' local counts ----------------------------------------------

  /// Observers registered for flushing. Guarded by `mtx`.
  std::vector<flushable*> observers;
  /// Guards `observers`, `worker_series`, per-worker child creation and
  /// removal, and every flush.
  std::mutex mtx;

  /// Moves every observer's unflushed counts into the families; the caller
  /// holds `mtx`.
  void flush_all();

  // -- scheduling -----------------------------------------------------------

  /// alb_placements_total{strategy}.
  strategy_counters placements;
  /// alb_adaptive_choices_total{strategy}.
  strategy_counters adaptive_choices;
  /// alb_scheduling_attempts_total{result="placed"}.
  prometheus::Counter* attempts_placed = nullptr;
  /// alb_scheduling_attempts_total{result="deferred"}.
  prometheus::Counter* attempts_deferred = nullptr;
  /// alb_scheduling_decision_seconds.
  prometheus::Histogram* decision_time = nullptr;

  // -- run and process ------------------------------------------------------

  /// alb_run_info{mode,strategy}.
  prometheus::Family<prometheus::Gauge>* run_info = nullptr;
  /// The current alb_run_info child.
  prometheus::Gauge* run_info_child = nullptr;
  // The process families carry the standard names of Prometheus's client
  // libraries, so stock process dashboards and alerts find them.

  /// process_start_time_seconds.
  prometheus::Gauge* start_time = nullptr;
  /// process_resident_memory_bytes.
  prometheus::Gauge* resident_memory = nullptr;
  /// process_virtual_memory_bytes.
  prometheus::Gauge* virtual_memory = nullptr;
  /// process_threads.
  prometheus::Gauge* threads = nullptr;
  /// process_open_fds.
  prometheus::Gauge* open_fds = nullptr;
  /// process_max_fds.
  prometheus::Gauge* max_fds = nullptr;
  /// process_cpu_seconds_total.
  prometheus::Counter* cpu_seconds = nullptr;
};

/// Bucket upper bounds of alb_assignment_wait_seconds (1 ms .. 300 s).
const prometheus::Histogram::BucketBoundaries& wait_buckets();

/// Bucket upper bounds of alb_test_duration_seconds (1 ms .. 1 h).
const prometheus::Histogram::BucketBoundaries& duration_buckets();

/// Bucket upper bounds of alb_scheduling_decision_seconds (100 ns .. 10 ms).
const prometheus::Histogram::BucketBoundaries& decision_buckets();

} // namespace alb::metrics::detail
