#include "metrics/prometheus_observer.hpp"

#include "metrics/families.hpp"
#include "metrics/registry.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace alb::metrics {

namespace {

using prometheus::Counter;
using prometheus::Gauge;
using prometheus::Histogram;

/// Maps a priority to its index; out-of-range values are clamped so a bad
/// caller cannot create new label values.
std::size_t prio(int priority) {
  return static_cast<std::size_t>(
           std::clamp(priority, 1, static_cast<int>(detail::priority_levels)))
         - 1;
}

/// A count with one writer (the observer's thread) and one reader (the
/// flush, under `families::mtx`).
class local_counter {
public:
  /// Adds one. A relaxed load and store: no lock prefix, since only one
  /// thread writes.
  void inc() {
    value_.store(value_.load(std::memory_order_relaxed) + 1,
                 std::memory_order_relaxed);
  }

  /// Adds what was counted since the last flush to `target`.
  void flush(Counter& target) {
    auto now = value_.load(std::memory_order_relaxed);
    if (now != synced_)
      target.Increment(static_cast<double>(now - synced_));
    synced_ = now;
  }

private:
  std::atomic<std::uint64_t> value_{0};
  std::uint64_t synced_ = 0;
};

/// A single-writer histogram, flushed into a Prometheus histogram with the
/// same bucket bounds.
class local_histogram {
public:
  local_histogram(const Histogram::BucketBoundaries& bounds, Histogram& target)
    : bounds_(bounds), counts_(bounds.size() + 1),
      synced_(bounds.size() + 1, 0), deltas_(bounds.size() + 1, 0.0),
      target_(target) {
    // nop
  }

  void observe(double value) {
    // Same bucket rule as Prometheus: the first bound >= value, else +Inf.
    auto i = static_cast<std::size_t>(
      std::lower_bound(bounds_.begin(), bounds_.end(), value)
      - bounds_.begin());
    counts_[i].store(counts_[i].load(std::memory_order_relaxed) + 1,
                     std::memory_order_relaxed);
    sum_.store(sum_.load(std::memory_order_relaxed) + value,
               std::memory_order_relaxed);
  }

  void flush() {
    bool any = false;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      auto now = counts_[i].load(std::memory_order_relaxed);
      deltas_[i] = static_cast<double>(now - synced_[i]);
      any = any || now != synced_[i];
      synced_[i] = now;
    }
    auto sum = sum_.load(std::memory_order_relaxed);
    if (any)
      target_.ObserveMultiple(deltas_, sum - synced_sum_);
    synced_sum_ = sum;
  }

private:
  const Histogram::BucketBoundaries& bounds_;
  std::vector<std::atomic<std::uint64_t>> counts_;
  std::atomic<double> sum_{0};
  std::vector<std::uint64_t> synced_;
  double synced_sum_ = 0;
  std::vector<double> deltas_;
  Histogram& target_;
};

/// Local counts per priority, flushed into a priority-labelled family.
struct by_priority {
  std::array<local_counter, detail::priority_levels> counts;
  std::array<Counter*, detail::priority_levels> targets;

  explicit by_priority(const std::array<Counter*, detail::priority_levels>& t)
    : targets(t) {
    // nop
  }

  void inc(int priority) { counts[prio(priority)].inc(); }

  void flush() {
    for (std::size_t i = 0; i < counts.size(); ++i)
      counts[i].flush(*targets[i]);
  }
};

/// Strategy name -> local counter, in front of a shared strategy family. The
/// hot path compares one short string once warm; a new name allocates once.
class strategy_table {
public:
  explicit strategy_table(detail::strategy_counters& shared) : shared_(shared) {
    // nop
  }

  local_counter& get(std::string_view name) {
    auto n = size_.load(std::memory_order_relaxed);
    if (n > 0 && names_[last_] == name)
      return counts_[last_];
    for (std::size_t i = 0; i < n; ++i) {
      if (names_[i] == name) {
        last_ = i;
        return counts_[i];
      }
    }
    // Unknown here: resolve through the shared family, which maps names past
    // its limit to "other". Entries have distinct targets, so the table
    // never holds more than the family's children and cannot overflow.
    auto& target = shared_.get(name);
    for (std::size_t i = 0; i < n; ++i)
      if (targets_[i] == &target)
        return counts_[i];
    names_[n] = std::string{name};
    targets_[n] = &target;
    last_ = n;
    // Publish the filled entry to the flushing thread.
    size_.store(n + 1, std::memory_order_release);
    return counts_[n];
  }

  void flush() {
    auto n = size_.load(std::memory_order_acquire);
    for (std::size_t i = 0; i < n; ++i)
      counts_[i].flush(*targets_[i]);
  }

private:
  /// The shared family's children: its names plus "other".
  static constexpr std::size_t capacity = detail::max_strategy_labels + 1;

  detail::strategy_counters& shared_;
  std::array<std::string, capacity> names_;
  std::array<Counter*, capacity> targets_{};
  std::array<local_counter, capacity> counts_;
  std::atomic<std::size_t> size_{0};
  std::size_t last_ = 0;
};

/// The series of one tracked worker.
struct worker_series {
  Gauge* load = nullptr;
  Gauge* active = nullptr;
  Counter* assignments_target = nullptr;
  Counter* completions_target = nullptr;
  local_counter assignments;
  local_counter completions;

  void flush() {
    assignments.flush(*assignments_target);
    completions.flush(*completions_target);
  }
};

/// What the observer knows about a worker slot.
struct worker_slot {
  bool present = false;
  /// Null when the worker is beyond the series limit.
  std::unique_ptr<worker_series> series;
};

} // namespace

struct prometheus_observer::state : detail::flushable {
  detail::families& fams;
  observer_options opts;
  by_priority submitted{fams.submitted};
  by_priority assigned{fams.assigned};
  by_priority completed{fams.completed};
  by_priority retried{fams.retried};
  by_priority requeued{fams.requeued};
  by_priority cancelled{fams.cancelled};
  std::array<local_counter, detail::failure_reasons> failed;
  local_counter migrated;
  local_counter stolen;
  local_counter speculated;
  local_counter speculation_wins;
  local_counter attempts_placed;
  local_counter attempts_deferred;
  local_histogram wait{detail::wait_buckets(), *fams.assignment_wait};
  local_histogram duration{detail::duration_buckets(), *fams.test_duration};
  local_histogram decision{detail::decision_buckets(), *fams.decision_time};
  strategy_table placements{fams.placements};
  strategy_table choices{fams.adaptive_choices};
  /// By dense worker index; resized and reset only under `fams.mtx`.
  std::vector<worker_slot> workers;
  /// One past the highest worker index that ever had a series: above it
  /// the per-test hooks skip the table (most workers of a large pool), so
  /// they do not touch its memory at all.
  std::atomic<std::size_t> tracked_end{0};

  state(detail::families& f, observer_options o) : fams(f), opts(o) {
    // Warm the strategy tables with the known names so the first decisions
    // take no lock.
    for (auto name : detail::known_strategies) {
      placements.get(name);
      choices.get(name);
    }
  }

  void flush() override {
    submitted.flush();
    assigned.flush();
    completed.flush();
    retried.flush();
    requeued.flush();
    cancelled.flush();
    for (std::size_t i = 0; i < failed.size(); ++i)
      failed[i].flush(*fams.failed[i]);
    migrated.flush(*fams.migrated);
    stolen.flush(*fams.stolen);
    speculated.flush(*fams.speculated);
    speculation_wins.flush(*fams.speculation_wins);
    attempts_placed.flush(*fams.attempts_placed);
    attempts_deferred.flush(*fams.attempts_deferred);
    wait.flush();
    duration.flush();
    decision.flush();
    placements.flush();
    choices.flush();
    for (auto& slot : workers)
      if (slot.series)
        slot.series->flush();
  }

  worker_series* series_of(std::size_t worker) const {
    if (worker >= tracked_end.load(std::memory_order_relaxed))
      return nullptr;
    return worker < workers.size() ? workers[worker].series.get() : nullptr;
  }

  /// Forgets the worker in `slot`; the caller holds `fams.mtx`.
  void release(worker_slot& slot) {
    if (!slot.present)
      return;
    if (!slot.series) {
      fams.workers_untracked->Decrement();
    } else {
      // Removing the series keeps cardinality bounded under churn; the freed
      // place goes to the next worker that joins.
      auto& s = *slot.series;
      fams.worker_load->Remove(s.load);
      fams.worker_active->Remove(s.active);
      fams.worker_assignments->Remove(s.assignments_target);
      fams.worker_completions->Remove(s.completions_target);
      --fams.worker_series;
    }
    slot = worker_slot{};
  }
};

prometheus_observer::prometheus_observer(registry& reg, observer_options opts)
  : st_(std::make_unique<state>(reg.families(), opts)) {
  std::lock_guard<std::mutex> guard{st_->fams.mtx};
  st_->fams.observers.push_back(st_.get());
}

prometheus_observer::~prometheus_observer() {
  auto& fams = st_->fams;
  std::lock_guard<std::mutex> guard{fams.mtx};
  st_->flush();
  // Series of workers still present would otherwise stay behind and count
  // against the shared limit.
  for (auto& slot : st_->workers)
    st_->release(slot);
  auto& obs = fams.observers;
  obs.erase(std::remove(obs.begin(), obs.end(), st_.get()), obs.end());
}

void prometheus_observer::on_submitted(int priority) {
  st_->submitted.inc(priority);
}

void prometheus_observer::on_assigned(std::size_t worker, int priority,
                                      std::string_view strategy,
                                      double wait_seconds) {
  st_->assigned.inc(priority);
  st_->wait.observe(wait_seconds);
  st_->placements.get(strategy).inc();
  if (auto* s = st_->series_of(worker))
    s->assignments.inc();
}

void prometheus_observer::on_completed(std::size_t worker, int priority,
                                       double exec_seconds) {
  st_->completed.inc(priority);
  st_->duration.observe(exec_seconds);
  if (auto* s = st_->series_of(worker))
    s->completions.inc();
}

void prometheus_observer::on_failed(int priority, failure_kind why) {
  // A cancel is the user's decision, not a failure of the test: it must not
  // lower success rates computed from alb_tests_failed_total.
  if (why == failure_kind::cancelled) {
    st_->cancelled.inc(priority);
    return;
  }
  auto i = static_cast<std::size_t>(why);
  st_->failed[i < detail::failure_reasons ? i : 0].inc();
}

void prometheus_observer::on_retried(int priority) {
  st_->retried.inc(priority);
}

void prometheus_observer::on_requeued(int priority) {
  st_->requeued.inc(priority);
}

void prometheus_observer::on_migrated() {
  st_->migrated.inc();
}

void prometheus_observer::on_stolen() {
  st_->stolen.inc();
}

void prometheus_observer::on_speculated() {
  st_->speculated.inc();
}

void prometheus_observer::on_speculation_win() {
  st_->speculation_wins.inc();
}

void prometheus_observer::on_strategy_choice(std::string_view chosen) {
  st_->choices.get(chosen).inc();
}

void prometheus_observer::on_worker_joined(std::size_t worker,
                                           std::string_view id) {
  auto& fams = st_->fams;
  fams.workers_joined->Increment();
  std::lock_guard<std::mutex> guard{fams.mtx};
  if (worker >= st_->workers.size())
    st_->workers.resize(worker + 1);
  auto& slot = st_->workers[worker];
  // A join for a slot still in use means the leave was never reported.
  st_->release(slot);
  slot.present = true;
  if (fams.worker_series >= st_->opts.max_worker_series) {
    fams.workers_untracked->Increment();
    return;
  }
  ++fams.worker_series;
  const prometheus::Labels labels{{"worker", std::string{id}}};
  auto s = std::make_unique<worker_series>();
  s->load = &fams.worker_load->Add(labels);
  s->active = &fams.worker_active->Add(labels);
  s->assignments_target = &fams.worker_assignments->Add(labels);
  s->completions_target = &fams.worker_completions->Add(labels);
  slot.series = std::move(s);
  if (worker >= st_->tracked_end.load(std::memory_order_relaxed))
    st_->tracked_end.store(worker + 1, std::memory_order_relaxed);
}

void prometheus_observer::on_worker_left(std::size_t worker, bool lost) {
  auto& fams = st_->fams;
  (lost ? fams.workers_lost : fams.workers_left)->Increment();
  std::lock_guard<std::mutex> guard{fams.mtx};
  if (worker < st_->workers.size())
    st_->release(st_->workers[worker]);
}

void prometheus_observer::on_worker_load(std::size_t worker, double load,
                                         int active_tests) {
  if (auto* s = st_->series_of(worker)) {
    s->load->Set(load);
    s->active->Set(active_tests);
  }
}

void prometheus_observer::on_snapshot(const cluster_snapshot& snap) {
  auto& fams = st_->fams;
  for (std::size_t i = 0; i < detail::priority_levels; ++i) {
    // Index order of detail::queue_states.
    auto& depth = fams.queue_depth[i];
    depth[0]->Set(static_cast<double>(snap.queued_by_priority[i]));
    depth[1]->Set(static_cast<double>(snap.parked_by_priority[i]));
    depth[2]->Set(static_cast<double>(snap.key_waiting_by_priority[i]));
  }
  fams.in_flight->Set(static_cast<double>(snap.assigned));
  fams.workers_busy->Set(static_cast<double>(snap.busy_workers));
  fams.workers_idle->Set(static_cast<double>(
    snap.workers - std::min(snap.busy_workers, snap.workers)));
  fams.load_mean->Set(snap.mean_load);
}

void prometheus_observer::observe_decision(double seconds, bool placed) {
  st_->decision.observe(seconds);
  (placed ? st_->attempts_placed : st_->attempts_deferred).inc();
}

void prometheus_observer::set_nodes(std::size_t n) {
  st_->fams.nodes->Set(static_cast<double>(n));
}

void prometheus_observer::count_refused_connection(std::string_view reason) {
  auto& r = detail::refusal_reasons;
  for (std::size_t i = 0; i < r.size(); ++i)
    if (r[i] == reason)
      st_->fams.connections_refused[i]->Increment();
}

void prometheus_observer::count_node_timeout() {
  st_->fams.nodes_timed_out->Increment();
}

bool prometheus_observer::tracks_worker(std::size_t worker) const {
  return st_->series_of(worker) != nullptr;
}

} // namespace alb::metrics
