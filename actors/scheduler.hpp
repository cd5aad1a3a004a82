#pragma once

// The scheduler actor: a thin shell around `alb::cluster_state`. It turns
// messages into calls on the core, sends the core's placements to workers in
// one batch per worker, watches workers (down messages requeue their tests)
// and drives periodic work with a timer message to itself.

#include <atomic>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <caf/actor_clock.hpp>
#include <caf/mailbox_element.hpp>
#include <caf/message_id.hpp>

#include "actors/messages.hpp"
#include "runtime/cluster_state.hpp"

namespace alb {

/// What the workers of one shard can hold at most: where a test with
/// needs goes.
struct shard_capacity {
  /// Largest `available_memory` of its workers, GB.
  double max_memory = 0;
  /// Most accelerators of each type on one of its workers.
  std::map<std::string, int> max_accelerators;
};

/// A scheduler split into shards in one process, each on a thread (an
/// actor system) of its own with its own partition of the workers (a
/// simulated run past one core). Shard 0 takes the submitter's submissions
/// and passes each shard its share (a feeder thread splits its own:
/// `submit_to_shards`); an idle shard asks another for queued tests
/// (`steal_atom`); the run ends once every submitted test settled in some
/// shard, when each shard reports its part (`on_finished`) and stops.
struct shard_group {
  /// The shards, by index; filled before `ready` is set.
  std::vector<shard_actor> members;
  /// What each shard's workers can hold (same order).
  std::vector<shard_capacity> capacity;
  /// Set once `members` is complete.
  std::atomic<bool> ready{false};
  /// The clock every shard reads its time from, so the parts of one run
  /// share one timeline.
  caf::actor_clock::time_point start;
  /// Tests the run submitted (known once the submitters are done).
  std::atomic<uint64_t> expected{std::numeric_limits<uint64_t>::max()};
  /// Tests that ended or were refused, in all shards.
  std::atomic<uint64_t> settled{0};
  /// Set by the shard that saw the last test settle (which then sends
  /// every shard `finish_atom`).
  std::atomic<bool> all_settled{false};
  /// Called by each shard on `finish_atom`, on its thread, before it stops.
  std::function<void(uint32_t index, const cluster_state&, double now)>
    on_finished;
};

/// Sends from `sender` (may be null) to an actor of another actor system
/// in this process without an execution context, so the receiver runs on
/// its own system's threads (a send from an actor would schedule it on the
/// sender's).
template<class Handle, class... Ts>
void send_across(const Handle& dest, caf::strong_actor_ptr sender, Ts&&... xs) {
  if (dest)
    dest->enqueue(caf::make_mailbox_element(std::move(sender),
                                            caf::make_message_id(), {},
                                            std::forward<Ts>(xs)...),
                  nullptr);
}

/// The shard of `g` a submitted test goes to: by its concurrency key's hash
/// if it has one (a key's limit is kept by one shard), else the next in
/// turn from `cursor` (advanced) whose workers can hold it.
size_t shard_for(const shard_group& g, uint32_t& cursor,
                 const test_requirements& t);

/// Hands `batch` to the shards of `g` from outside any actor (the run's
/// feeder thread), each its share as shard 0 would route it (`shard_for`),
/// straight to the shard: half the tests of a two-shard run skip a hop
/// through shard 0 and its thread's wake-up. Call only once `g.ready`.
void submit_to_shards(const shard_group& g, uint32_t& cursor,
                      test_batch&& batch);

/// Tells every shard of `g` to report its part and stop (`finish_atom`,
/// from no sender: only the run itself may stop a shard).
void finish_shards(const shard_group& g);

/// The metrics document a scheduler reports (`stats_atom`, the recorder's
/// end): every figure of `stats` as of `now`, plus the strategy's name.
std::string metrics_document(const run_stats& stats, double now,
                             uint64_t workers, uint64_t waiting,
                             std::string_view strategy);

/// Settings of a scheduler actor.
struct scheduler_options {
  /// Core settings (strategy, queue, timers).
  scheduler_config config;
  /// Simulated seconds per real second (1 = real time).
  double time_scale = 1;
  /// Where time-series samples go (may be null).
  recorder_actor recorder;
  /// Event hooks, e.g. Prometheus (not owned; may be null).
  scheduler_observer* observer = nullptr;
  /// Called for every test that ends.
  end_listener on_end;
  /// Simulation only: the workload's estimates are noisy, each test really
  /// takes `duration_noise_factor(id, noise_seed, duration_noise)` times its
  /// expected duration (what simulated workers are told to draw around; the
  /// core keeps planning with the estimate). 0 = estimates are exact.
  double duration_noise = 0;
  /// Seed of the noise factors.
  uint64_t noise_seed = 0;
  /// Delivers one worker's placements some other way than a message to
  /// its handle, when it returns true (the coordinator gathers them per
  /// node and sends them on from `on_flush`); called on the scheduler's
  /// thread. Empty = always to the handle.
  std::function<bool(const worker_actor&, work_batch&)> route;
  /// Called once after every message the scheduler handled, after the
  /// placements it made were sent: a listener that gathers `on_end` calls
  /// sends them on from here in one message instead of one per test.
  std::function<void()> on_flush;
  /// End the run (and stop the workers) once the submitters are done and
  /// every test ended; off for long-running services.
  bool finish_when_done = true;
  /// Check the core's invariants on every tick; violations are reported to
  /// `on_violation`.
  bool check_invariants = false;
  /// Receives invariant violations.
  std::function<void(const std::string&)> on_violation;
  /// Seconds past a test's timeout after which the scheduler stops waiting
  /// for a started placement its worker never reported (counted from the
  /// worker's start notice, `report_batch::started`): the attempt fails as
  /// timed out, the test is retried or fails as its retries say, and the
  /// worker is told to cancel it. < 0 = off (the workers' own timeouts are
  /// trusted). Checked on every tick.
  double timeout_grace = -1;
  /// Receives a line for each placement given up that way (may be empty).
  std::function<void(const std::string&)> log;
  /// Called on every tick with the core (progress display, tests).
  std::function<void(const cluster_state&, double now)> on_tick;
  /// Workers expected to join (0 = not known): room is made for them up
  /// front.
  size_t expected_workers = 0;
  /// The shards this scheduler is one of (null = not split).
  std::shared_ptr<shard_group> shards;
  /// This scheduler's index in `shards`.
  uint32_t shard_index = 0;
};

/// Spawns a scheduler.
scheduler_actor spawn_scheduler(caf::actor_system& sys, scheduler_options opts);

/// Spawns one shard of a split scheduler (`opts.shards` set).
shard_actor spawn_shard(caf::actor_system& sys, scheduler_options opts);

} // namespace alb
