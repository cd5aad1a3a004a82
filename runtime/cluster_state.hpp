#pragma once

// The scheduling core: the worker registry with reservations, the pending
// queue by priority with aging, parked tests that fit nowhere yet, concurrency
// keys, and every test's life cycle. A deterministic, single-threaded state
// machine: callers pass the current time in; nothing here reads a clock, does
// I/O or knows about actors. The scheduler actor feeds it messages; unit tests
// and benchmarks call it directly.

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "runtime/boxed.hpp"
#include "runtime/capacity_index.hpp"
#include "runtime/chunked_store.hpp"
#include "runtime/constraints.hpp"
#include "runtime/id_index.hpp"
#include "runtime/model.hpp"
#include "runtime/observer.hpp"
#include "runtime/run_stats.hpp"
#include "runtime/scheduler_config.hpp"
#include "runtime/strategy.hpp"

namespace alb {

/// Identifies one placement of one test: the test's record index and the
/// record's generation, so a late message about an earlier placement (or an
/// earlier test in a reused record) is recognized and ignored.
struct test_handle {
  /// Record index.
  uint32_t ref = 0;
  /// Generation of the record when the placement was made.
  uint32_t gen = 0;
};

/// The scalar state of a test's record: what the hot path reads for every
/// test (queue, placement, end), together in the record's first cache
/// lines, and reset at once when a record is reused.
struct test_record_state {
  /// Current state.
  test_status status = test_status::pending;
  /// Whether the record is in use.
  bool live = false;
  /// Whether it sits in the queue.
  bool queued = false;
  /// Whether it sits in the parked lists.
  bool parked = false;
  /// Whether it waits for its concurrency key.
  bool key_waiting = false;
  /// Whether another shard handed it over (it moves between shards once
  /// at most, so two idle shards cannot trade it back and forth).
  bool handed = false;
  /// Whether its worker was asked to give it back (a move is in flight).
  bool revoking = false;
  /// Whether the move in flight is a steal rather than a migration.
  bool stealing = false;
  /// Size class of its expected duration in the queue (see
  /// `cluster_state::size_class_of`; 0 when the strategy does not take
  /// longest first).
  uint8_t size_class = 0;
  /// Its priority band in the queue (`req.priority - 1`), next to the
  /// other fields a queue entry is checked against.
  uint8_t band = 0;
  /// Whether it ever got a copy (one per test).
  bool speculated = false;
  /// Whether it ended with its copy's result.
  bool copy_won = false;
  /// Bumped on every placement and on reuse of the record.
  uint32_t gen = 0;
  /// Worker slot holding it, or npos.
  uint32_t worker = capacity_index::npos;
  /// Its index in that worker's `held` (valid while `worker` is set): an
  /// end removes it without scanning what the worker holds.
  uint32_t held_at = 0;
  /// Statistics serial of the worker it was last placed on (npos = none).
  uint32_t last_serial = capacity_index::npos;
  /// Slot of the worker its last attempt failed on (retries avoid it).
  uint32_t excluded = capacity_index::npos;
  /// Speculation: the record of its copy running on another worker (npos
  /// = none).
  uint32_t copy = capacity_index::npos;
  /// Speculation: on a copy, the record of the test it copies (npos = not
  /// a copy). A copy is no test of its own: it is not counted, listed or
  /// looked up by id, and it ends with its original.
  uint32_t copy_of = capacity_index::npos;
  /// Slot the move in flight goes to (npos = none).
  uint32_t move_to = capacity_index::npos;
  /// Statistics serial of that worker, so a worker that took over the slot
  /// in the meantime is not mistaken for it.
  uint32_t move_to_serial = capacity_index::npos;
  /// Placements so far.
  int attempts = 0;
  /// Failed attempts so far.
  int failures = 0;
  /// Moves of it that were migrations.
  int migrated = 0;
  /// Moves of it that were steals.
  int stolen = 0;
  /// The need in index units.
  capacity_need need;
  /// Order of its latest placement: a worker starts its local queue first
  /// in, first out, so the latest placements are the ones not started.
  uint64_t placed_seq = 0;
  /// Submission time.
  double submitted_at = 0;
  /// When it last entered the queue (aging counts from here).
  double enqueued_at = 0;
  /// When the last worker that could hold it left while it waited (-1 =
  /// none did): its wait limit counts from here or its submission,
  /// whichever is later, so a node that restarts does not fail the tests
  /// that waited for it long ago.
  double fit_lost_at = -1;
  /// When it was last placed.
  double assigned_at = -1;
  /// When it started running.
  double started_at = -1;
};

/// One submitted test as the core tracks it: its state first, then its
/// requirements; what most tests leave empty is kept out of line (`boxed`),
/// so a burst of tests touches fewer cache lines and pages.
struct test_record : test_record_state {
  /// What the test needs.
  test_requirements req;
  /// How to run it (empty = simulated): the core carries it to each
  /// placement without reading it.
  boxed<test_run> run;
  /// Its software, tag and backend requirements, parsed at submission.
  boxed<node_constraints> cons;
};

/// What a worker reports about one attempt.
struct attempt_outcome {
  /// Whether the test passed.
  bool success = true;
  /// Whether it was stopped by its timeout.
  bool timed_out = false;
  /// Seconds it ran.
  double exec_seconds = 0;
  /// Seconds it waited in the worker's local queue before starting.
  double queued_seconds = 0;
  /// Why it failed.
  std::string error;
  /// Exit status of a real command.
  int exit_code = 0;
  /// Tail of its stdout.
  std::string output_tail;
  /// Signal that ended a real command (0 = it exited).
  int signal = 0;
  /// Tail of its stderr.
  std::string stderr_tail;
};

/// One worker slot of the registry.
struct worker_slot {
  /// What the worker offers.
  worker_capabilities caps;
  /// Whether a worker occupies the slot.
  bool alive = false;
  /// Serial in the run's worker statistics.
  uint32_t serial = 0;
  /// Concurrent test slots.
  int slots = 1;
  /// Tests it may hold: slots plus its local queue (prefetch).
  int capacity = 1;
  /// Memory capacity in GB.
  float total_memory = 0;
  /// Memory not reserved.
  float free_memory = 0;
  /// Accelerator capacity per interned type.
  accel_counts total_accel{};
  /// Accelerators not reserved.
  accel_counts free_accel{};
  /// Load not caused by our tests, 0-1 (from its load reports).
  float external_load = 0;
  /// Tests it holds.
  std::vector<test_handle> held;
  /// Tests placed here since it joined.
  uint64_t assignments = 0;
  /// Whether the worker answers revokes (gives back queued tests); only
  /// such workers are sources of moves.
  bool revocable = true;
  /// Held tests it was asked to give back (answers pending).
  int revoking = 0;
  /// Tests moving to it (answers pending at their sources).
  int incoming = 0;
  /// When it last gave a test away (it takes none for a cool-down).
  double gave_at = -1e300;
  /// When it last received a moved test (it gives none for a cool-down).
  double received_at = -1e300;
  /// Position in the overloaded candidates (npos = not a candidate).
  uint32_t over_pos = capacity_index::npos;
  /// Position in the idle candidates (npos = not a candidate).
  uint32_t idle_pos = capacity_index::npos;
};

/// Activity since the last `take_tick_delta()`, for time series.
struct tick_delta {
  /// Tests completed successfully.
  uint64_t completed = 0;
  /// Tests that started for the first time.
  uint64_t started = 0;
  /// Sum of their waits (submission to start), seconds.
  double latency_sum = 0;
};

/// A queued test moving from one scheduler to another (`hand_over`).
struct handed_test {
  /// What it needs.
  test_requirements req;
  /// How to run it (empty = simulated).
  test_run run;
  /// When it was first submitted (the giver's clock, which the shards of a
  /// run share).
  double submitted_at = 0;
};

/// Returns "" when `req` is acceptable, otherwise what is wrong with it.
std::string validate_requirements(const test_requirements& req);

/// Called when a test ends, with its final record view and the last attempt.
using end_listener
  = std::function<void(const assignment&, const attempt_outcome*)>;

/// The scheduling state machine.
class cluster_state {
public:
  /// Sentinel for "no worker".
  static constexpr uint32_t npos = capacity_index::npos;

  /// Creates an empty cluster; throws std::invalid_argument on a bad config
  /// or strategy name.
  explicit cluster_state(scheduler_config cfg = {});

  ~cluster_state();

  cluster_state(const cluster_state&) = delete;
  cluster_state& operator=(const cluster_state&) = delete;

  // -- setup ---------------------------------------------------------------

  /// Sets who hears about events (not owned; may be null).
  void set_observer(scheduler_observer* obs) { obs_ = obs; }

  /// Replaces the placement strategy.
  void set_strategy(std::unique_ptr<strategy> s);

  /// Sets who hears about ended tests (the embedding API, journals).
  void set_end_listener(end_listener f) { on_end_ = std::move(f); }

  /// The active configuration.
  const scheduler_config& config() const { return cfg_; }

  // -- workers -------------------------------------------------------------

  /// Registers a worker; returns its slot. Throws std::invalid_argument when
  /// the capabilities are unusable (e.g. a fifth accelerator type).
  uint32_t add_worker(worker_capabilities caps, double now);

  /// Removes the worker in `slot`; every test it held goes back to the queue.
  /// `lost` tells a crash from a clean leave. Unknown slots are ignored.
  void remove_worker(uint32_t slot, bool lost, double now);

  /// Applies a load report from the worker in `slot`.
  void update_load(uint32_t slot, const worker_load& load);

  /// Returns the worker in `slot`.
  const worker_slot& worker(uint32_t slot) const { return workers_[slot]; }

  /// Slots of all registered workers (order changes on removal).
  const std::vector<uint32_t>& live_workers() const { return live_; }

  /// Number of registered workers.
  size_t worker_count() const { return live_.size(); }

  /// Load score of the worker in `slot`, 0-1 (lower is less loaded).
  float load_of(uint32_t slot) const;

  /// Tests the worker in `slot` holds but has not started, assuming it
  /// starts its local queue in order whenever a slot is free; tests being
  /// given back are not counted.
  int queued_on(uint32_t slot) const;

  /// Whether the worker in `slot` answers revokes (default true; the actor
  /// layer clears it for workers that never said they do).
  void set_revocable(uint32_t slot, bool yes);

  /// The capacity index (for strategies).
  const capacity_index& index() const { return index_; }

  /// Whether the worker in `slot` meets `t`'s non-capacity requirements
  /// (backend, software versions, tags, not the worker its last attempt
  /// failed on).
  bool eligible(uint32_t slot, const test_record& t) const;

  /// Why no registered worker could hold `t` even when idle, naming the
  /// first requirement none meets: "no node has 64 GB memory", "no node
  /// has cuda >= 2", "no node has software torch >= 3", "no node has tag
  /// gpu-rack", "no node has backend rocm", "no node meets all of its
  /// requirements at once", "no node has joined" (none ever did), "no node is
  /// connected (every node that joined has left)"; "" when one could. This
  /// is the one place that decides a test can never fit the current
  /// cluster (waiting reasons and the wait-limit failure use it). A scan of
  /// the workers: for parked tests and status views, not per placement.
  std::string unmet_reason(const test_record& t) const;

  /// Whether `t` fits the worker in `slot` now, all requirements included.
  bool fits_now(uint32_t slot, const test_record& t) const {
    return index_.fits_now(slot, t.need) && eligible(slot, t);
  }

  // -- tests ---------------------------------------------------------------

  /// Result of `submit`.
  enum class submit_status {
    /// Queued.
    accepted,
    /// A live test already has this id.
    duplicate,
    /// The requirements are invalid (see `last_error()`).
    invalid,
  };

  /// Queues a test. Does not place it: call `dispatch`.
  submit_status submit(test_requirements req, double now);

  /// The same for a real test: `run` rides in its record to every
  /// placement (`record(h).run`).
  submit_status submit(test_requirements req, test_run run, double now);

  /// Takes on a test submitted to another scheduler of the run at
  /// `t.submitted_at` (a shard's share of a submission, or with `stolen` a
  /// test another shard handed over, `hand_over`): queued here like a
  /// submission, its wait counted from `submitted_at`; `stolen` counts it
  /// in `stolen_tests`.
  submit_status adopt(handed_test&& t, double now, bool stolen = true);

  /// Gives up to `max` queued tests away to another scheduler, newest
  /// first from the lowest priority band: only tests never placed, with no
  /// concurrency key, accelerator, software, tag or backend requirement,
  /// not handed over before,
  /// needing at most `max_memory` GB (what any worker of the taker can
  /// hold). They leave this core without ending (`open_tests()` drops,
  /// `stats().submitted_count()` too) and are appended to `out`; returns
  /// how many. Costs O(taken + stale queue entries).
  size_t hand_over(size_t max, double max_memory,
                   std::vector<handed_test>& out);

  /// Makes room for `n` workers at once (a hint: a fleet of known size
  /// then joins without the per-worker arrays doubling, whose old halves
  /// would stay resident).
  void reserve_workers(size_t n);

  /// Why the last `submit` or `add_worker` was refused.
  const std::string& last_error() const { return last_error_; }

  /// Places as many queued tests as fit; new placements go to the outbox.
  void dispatch(double now);

  /// Pull dispatch: offers queued tests, best first, to the worker in
  /// `slot` (which just reported) while they fit it, its load stays within
  /// `pull_slack` of the least loaded worker's, and the strategy ranks by
  /// load. Stops at the first test that does not fit, which keeps the
  /// queue's order; `dispatch` places the rest.
  void refill(uint32_t slot, double now);

  /// The worker started the placement `h` after `queued_seconds` in its
  /// local queue. Optional: `complete` also records the start.
  void started(uint32_t slot, test_handle h, double now);

  /// The slot of the worker holding placement `h` now, or npos when `h` is
  /// not current (the test ended, was requeued or placed again).
  uint32_t holder(test_handle h) const;
  /// Applies the worker's report on placement `h`. Returns false when the
  /// report is stale (the test was requeued or the worker replaced).
  bool complete(uint32_t slot, test_handle h, const attempt_outcome& o,
                double now);

  /// Withdraws a test that has not ended; returns whether it was found. A
  /// placed test is released at once; its worker slot and placement are
  /// stored in `slot`/`placement` (slot = npos otherwise) so the caller can
  /// tell the worker.
  bool cancel(std::string_view test_id, double now, uint32_t* slot = nullptr,
              test_handle* placement = nullptr);

  /// Slot of the worker the open test `test_id` is placed on (assigned or
  /// running), npos when it is not placed or not open.
  uint32_t placed_slot(std::string_view test_id) const;

  /// Periodic work: aging is implicit, this fails parked tests whose wait
  /// limit passed, re-examines parked tests and runs a rebalancing cycle
  /// when `rebalance_interval` has passed since the last one.
  void tick(double now);

  // -- rebalancing ---------------------------------------------------------

  /// Runs one rebalancing cycle now: resets the per-cycle move budget and
  /// asks overloaded workers to give back queued tests for idle ones
  /// (migration). Looks at a bounded sample of candidates, never at every
  /// worker. Revokes go to the revoke outbox; nothing moves until the
  /// source answers (`revoked`).
  void rebalance(double now);

  /// Work stealing: the worker in `slot` (which just reported) takes queued
  /// tests from the busiest workers when it is idle, holds nothing beyond
  /// its running slots and the pending queue is empty. Draws from the same
  /// per-cycle budget as `rebalance`.
  void steal(uint32_t slot, double now);

  /// The worker in `slot` answers a revoke of placement `h`: `given_back`
  /// says it removed the test from its local queue without starting it.
  /// Only then is the test released from that worker and placed on the
  /// move's target (or queued again when the target no longer fits it);
  /// otherwise the worker started it and nothing moves. Returns whether
  /// the test moved; stale answers are ignored.
  bool revoked(uint32_t slot, test_handle h, bool given_back, double now);

  /// Calls `f(slot, handles)` for each worker asked to give back tests and
  /// clears the requests; `handles` may be moved from.
  template<class F>
  void drain_revokes(F&& f) {
    for (auto slot : revoke_dirty_) {
      auto& box = revoke_box_[slot];
      if (!box.empty())
        f(slot, box);
      box.clear();
    }
    revoke_dirty_.clear();
  }

  /// Whether revokes wait in the revoke outbox.
  bool has_revokes() const { return !revoke_dirty_.empty(); }

  /// Calls `f(slot, handle)` for each placement the worker in `slot` must
  /// stop and not report (the losing copy of a speculated test) and clears
  /// them.
  template<class F>
  void drain_cancels(F&& f) {
    for (auto& [slot, h] : cancels_)
      f(slot, h);
    cancels_.clear();
  }

  /// Speculation: while nothing waits and a worker is free, gives a
  /// straggling test a copy on a worker expected to finish it sooner (see
  /// `scheduler_config::speculate`). A real command's copy goes only to a
  /// worker of another known node (`worker_capabilities::node`) with a
  /// slot free to start it. Looks at a bounded number of workers per call.
  /// Called by `tick`.
  void speculate(double now);

  /// Moves started and not yet answered.
  size_t moves_in_flight() const { return moves_in_flight_; }

  /// The record behind `h` (valid until the test ends).
  const test_record& record(test_handle h) const { return tests_[h.ref]; }

  /// Calls `f(slot, handles)` for each worker with new placements and
  /// clears them; `handles` may be moved from.
  template<class F>
  void drain_outbox(F&& f) {
    for (auto slot : outbox_dirty_) {
      auto& box = outbox_[slot];
      if (!box.empty())
        f(slot, box);
      box.clear();
    }
    outbox_dirty_.clear();
  }

  /// Whether placements wait in the outbox.
  bool has_outbox() const { return !outbox_dirty_.empty(); }

  // -- state ---------------------------------------------------------------

  /// Tests in the queue (not parked).
  size_t queued() const;

  /// Expected seconds of work (at nominal speed) of the queued tests.
  double queued_work() const { return std::max(0.0, queued_work_); }

  /// Expected seconds of work (at nominal speed) of the parked tests.
  double parked_work() const { return std::max(0.0, parked_work_); }

  /// Expected seconds of work (at nominal speed) of the tests placed on
  /// workers, started or not.
  double placed_work() const { return std::max(0.0, placed_work_); }

  /// Expected seconds of work (at nominal speed) of the queued tests that
  /// need an accelerator.
  double queued_accel_work() const { return std::max(0.0, queued_accel_work_); }

  /// Expected seconds of work (at nominal speed) of the placed tests that
  /// need an accelerator.
  double placed_accel_work() const { return std::max(0.0, placed_accel_work_); }

  /// Queued tests of size class `k` or longer (see `size_class_of`), over
  /// all priorities; only those that need an accelerator with
  /// `accel_only`.
  size_t queued_at_least(int k, bool accel_only = false) const;

  /// Size classes of the queue: a priority band is kept in this many
  /// classes of expected duration so a strategy that takes the longest test
  /// first (`strategy::longest_first`) finds it in O(1).
  static constexpr int size_classes = 32;

  /// The size class of a test expected to run `seconds`: half-octaves from
  /// 1/16 s (class 1) up, 0 for an unknown (non-positive) duration.
  static int size_class_of(double seconds);

  /// Tests the dispatch pass under way holds back, waiting for a better
  /// worker (out of the queue until the pass ends; they are ahead of any
  /// test offered after them); only those that need an accelerator with
  /// `accel_only`.
  size_t held_back(bool accel_only = false) const;

  /// Tests parked because no worker can hold them now.
  size_t parked() const { return parked_count_; }

  /// Tests waiting for a concurrency key.
  size_t key_waiting() const { return key_waiting_count_; }

  /// Tests placed on workers.
  size_t in_flight() const { return in_flight_; }

  /// Placements made since the start.
  uint64_t placements() const { return placements_; }

  /// Tests not yet ended.
  size_t open_tests() const { return open_; }

  /// Run statistics so far.
  const run_stats& stats() const { return stats_; }

  /// Mutable statistics (the recorder feeds peak throughput).
  run_stats& stats() { return stats_; }

  /// The strategy in use.
  const strategy& active_strategy() const { return *strategy_; }

  /// Returns the activity since the last call and starts a new interval.
  tick_delta take_tick_delta() {
    auto d = delta_;
    delta_ = {};
    return d;
  }

  /// Point-in-time view for metrics and time series.
  cluster_snapshot snapshot(double now) const;

  /// Current view of every open test.
  std::vector<assignment> assignments() const;

  /// Calls `f(record)` for every open test (the status view reads them).
  template<class F>
  void for_each_open(F&& f) const {
    for (auto& t : tests_)
      if (t.live && t.copy_of == npos)
        f(t);
  }

  /// Checks every invariant (reservations within capacity and equal to the
  /// sum of held tests, counts consistent); returns "" or what is broken.
  std::string check_invariants() const;

  /// Interned index of accelerator type `name`, or -1 if unknown.
  int accel_index(std::string_view name) const;

private:
  uint32_t intern_accel(const std::string& name);
  void refresh(uint32_t slot);
  submit_status submit_at(test_requirements&& req, test_run&& run, double now,
                          double submitted_at, bool handed = false);
  void enqueue(uint32_t ref, double now, bool front);
  void mark_started(test_record& t, double at);
  bool pop_best(double now, uint32_t& ref, int cap = size_classes - 1);
  bool pop_longest(double now, uint32_t& ref, unsigned allowed);
  std::deque<test_handle>& live_front(size_t p, size_t k);
  bool take_front(size_t p, size_t k, uint32_t& ref);
  void requeue_front(uint32_t ref);
  void count_queued(const test_record& t, int delta);
  void count_placed(const test_record& t, int delta);
  void hold_back(uint32_t ref);
  bool may_copy_to(const test_record& t, uint32_t from, uint32_t to) const;
  void place_copy(uint32_t ref, uint32_t slot, double now);
  void drop_copy(uint32_t ref);
  void free_copy(uint32_t ref);
  bool complete_copy(uint32_t slot, test_handle h, const attempt_outcome& o,
                     double now);
  bool try_place(uint32_t ref, double now);
  void assign(uint32_t ref, uint32_t slot, double now);
  void release(uint32_t ref);
  void release_key(const std::string& key, double now);
  void end(uint32_t ref, test_status status, const attempt_outcome* o,
           failure_kind why, double now, uint32_t slot = npos);
  void park(uint32_t ref);
  void scan_parked(double now);
  bool could_ever_fit(const test_record& t) const;
  // Marks the waiting tests `w` could hold: their wait for a worker that
  // can hold them may start now (w is leaving).
  void note_fit_lost(const worker_slot& w, double now);
  // Fails test `ref` as unplaceable when no worker could ever hold it and
  // its wait limit passed; true when it ended.
  bool expire_unplaceable(uint32_t ref, double now);
  std::string describe_need(const test_record& t) const;
  assignment view(const test_record& t) const;
  void place_reserve(uint32_t ref, uint32_t slot, double now);
  void update_candidates(uint32_t slot, float load);
  void drop_candidate(std::vector<uint32_t>& set, uint32_t worker_slot::*pos,
                      uint32_t slot);
  void end_move(test_record& t);
  uint32_t pick_victim(uint32_t source, uint32_t target);
  uint32_t pick_target(const test_record& t, uint32_t source, double now);
  bool can_give(uint32_t slot, double now) const;
  bool can_take(uint32_t slot, double now) const;
  void start_move(uint32_t ref, uint32_t source, uint32_t target, bool steal,
                  double now);

  scheduler_config cfg_;
  std::unique_ptr<strategy> strategy_;
  scheduler_observer* obs_ = nullptr;
  end_listener on_end_;
  std::string last_error_;

  // Workers.
  std::vector<worker_slot> workers_;
  std::vector<uint32_t> free_slots_;
  std::vector<uint32_t> live_;
  std::vector<uint32_t> live_pos_;
  capacity_index index_;
  std::vector<std::string> accel_names_;
  std::unordered_map<std::string, int> backend_count_;
  std::unordered_map<std::string, int> software_count_;

  // Tests.
  chunked_store<test_record> tests_; // growth never moves records
  std::vector<uint32_t> free_tests_;
  id_index by_id_;
  /// Queued tests per priority band and size class, each first in, first
  /// out (stale entries are dropped when they reach the front).
  std::array<std::array<std::deque<test_handle>, size_classes>, 5> queue_;
  std::array<size_t, 5> queued_count_{};
  /// Live entries per band and size class, and per band the classes that
  /// have any (bit k = class k).
  std::array<std::array<uint32_t, size_classes>, 5> class_count_{};
  std::array<uint32_t, 5> class_mask_{};
  /// Live entries per size class of the tests that need an accelerator.
  std::array<uint32_t, size_classes> accel_class_count_{};
  double queued_work_ = 0;
  double placed_work_ = 0;
  double queued_accel_work_ = 0;
  double placed_accel_work_ = 0;
  double parked_work_ = 0;
  /// Tests a dispatch pass held back because the strategy chose to wait.
  std::vector<uint32_t> held_back_;
  /// Of those, the tests that need an accelerator.
  size_t held_back_accel_ = 0;
  std::array<std::deque<test_handle>, 5> parked_;
  size_t parked_count_ = 0;
  /// `parked_count_` by priority (index = priority - 1), for the snapshot.
  std::array<size_t, 5> parked_by_prio_{};
  bool capacity_changed_ = false;
  std::unordered_map<std::string, int> key_busy_;
  std::unordered_map<std::string, std::deque<test_handle>> key_waiters_;
  size_t key_waiting_count_ = 0;
  /// `key_waiting_count_` by priority, for the snapshot.
  std::array<size_t, 5> key_waiting_by_prio_{};
  size_t in_flight_ = 0;
  size_t open_ = 0;
  uint64_t placements_ = 0;

  // Outbox of new placements per worker slot.
  std::vector<std::vector<test_handle>> outbox_;
  std::vector<uint32_t> outbox_dirty_;

  // Rebalancing: candidate sets kept current on every load change, so a
  // cycle looks at a bounded sample instead of every worker.
  std::vector<uint32_t> over_;
  std::vector<uint32_t> idle_;
  size_t over_cursor_ = 0;
  size_t idle_cursor_ = 0;
  double next_rebalance_ = 0;
  int moves_left_ = 0;
  size_t moves_in_flight_ = 0;
  uint64_t placed_seq_ = 0;
  std::vector<std::vector<test_handle>> revoke_box_;
  /// Placements to stop without a report (losing copies).
  std::vector<std::pair<uint32_t, test_handle>> cancels_;
  /// Where the next `speculate` call starts in `live_`.
  size_t spec_cursor_ = 0;
  /// Copies placed and not ended.
  size_t copies_ = 0;
  std::vector<uint32_t> revoke_dirty_;
  std::vector<uint32_t> scratch_;

  run_stats stats_;
  tick_delta delta_;
};

} // namespace alb
