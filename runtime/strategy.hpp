#pragma once

// Placement strategies behind one interface. A strategy picks, for one test,
// a worker slot that can hold it now; the cluster state guarantees the fit
// (memory, accelerators, backend, software) through the candidate predicate
// and the capacity index, so no strategy can oversubscribe a worker.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace alb {

class cluster_state;
class execution_history;
struct scheduler_config;
struct test_record;

/// Chooses a worker for a test.
class strategy {
public:
  virtual ~strategy() = default;

  /// The strategy's name as users select it.
  virtual std::string_view name() const = 0;

  /// Returns a worker slot that fits `t` now, or `capacity_index::npos`.
  /// `eligible(slot)` must hold for the returned slot.
  virtual uint32_t pick(const test_record& t, const cluster_state& c) = 0;

  /// Whether this strategy ranks workers by load, so that a worker close to
  /// the least loaded may pull queued tests itself (see
  /// scheduler_config::pull_slack).
  virtual bool ranks_by_load() const { return false; }

  /// Late binding: whether the queue should offer this strategy the
  /// longest expected test of a priority band first (else first in, first
  /// out within the band).
  virtual bool longest_first() const { return false; }

  /// Whether the last `pick` that returned npos did so by choice: a worker
  /// could hold the test now, but the strategy expects it to finish sooner
  /// if it waits for a better one. The core then keeps the test queued and
  /// offers the free workers only shorter tests in that pass (a test that
  /// long or longer would wait too); it is offered again on the next pass.
  virtual bool deferred() const { return false; }

  /// A test ran on the worker in `slot` for `exec_seconds`; learned
  /// strategies update their history here.
  virtual void on_result(const test_record& /*t*/, uint32_t /*slot*/,
                         const cluster_state& /*c*/, double /*exec_seconds*/,
                         bool /*success*/) {}

  /// The worker in `slot` left; per-slot state must be forgotten (the slot
  /// will be reused by another worker).
  virtual void on_worker_removed(uint32_t /*slot*/) {}

  /// Speculation: the learned seconds `t` runs on the worker in `slot`; a
  /// negative number when the strategy learns no paces (then nothing is
  /// ever speculated).
  virtual double expected_seconds(const test_record& /*t*/, uint32_t /*slot*/,
                                  const cluster_state& /*c*/) {
    return -1;
  }

  /// Speculation: a worker other than `avoid` that can take `t` now, of the
  /// fastest speed the strategy knows such a worker of, or npos.
  virtual uint32_t pick_copy(const test_record& /*t*/,
                             const cluster_state& /*c*/, uint32_t /*avoid*/) {
    return UINT32_MAX;
  }

  /// Name of the strategy that made the last decision (differs from
  /// `name()` for strategies that delegate, such as `adaptive`).
  virtual std::string_view last_choice() const { return name(); }
};

/// Names accepted by `make_strategy`, in a stable order.
const std::vector<std::string>& strategy_names();

/// What a strategy may draw on besides the cluster it places on.
struct strategy_context {
  /// Seed for randomized strategies.
  uint64_t seed = 1;
  /// Learned execution times shared with the caller, who loads and saves
  /// them (not owned; null = each learned strategy keeps its own history in
  /// memory for the run).
  execution_history* history = nullptr;
  /// Whether a worker's advertised speed estimates its pace where history
  /// knows nothing yet; false treats every unknown worker as nominal (1.0),
  /// as for real workers that cannot measure their own speed.
  bool speed_hints = true;
};

/// Creates the strategy called `name`, seeding randomized ones with `seed`.
/// Throws std::invalid_argument naming the valid strategies otherwise.
std::unique_ptr<strategy> make_strategy(std::string_view name,
                                        uint64_t seed = 1);

/// Creates the strategy called `name` with `ctx`. Throws
/// std::invalid_argument naming the valid strategies for an unknown name.
std::unique_ptr<strategy> make_strategy(std::string_view name,
                                        const strategy_context& ctx);

/// Creates the strategy a `[scheduler]` section asks for: `cfg.strategy`,
/// dispatching to `cfg.strategy_by_type[t.req.test_type]` per test when that
/// table is not empty, with `cfg.seed`, `cfg.history` and `cfg.speed_hints`.
/// Throws std::invalid_argument for an unknown name.
std::unique_ptr<strategy> make_strategy(const scheduler_config& cfg);

} // namespace alb
