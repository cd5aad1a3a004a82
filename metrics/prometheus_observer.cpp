#include "metrics/prometheus_observer.hpp"

#include "metrics/families.hpp"
#include "metrics/registry.hpp"

#include <algorithm>

namespace alb::metrics {

namespace {

/// Maps a priority to its index; out-of-range values are clamped so a bad
/// caller cannot create new label values.
std::size_t prio(int priority) {
  return static_cast<std::size_t>(
           std::clamp(priority, 1, static_cast<int>(detail::priority_levels)))
         - 1;
}

} // namespace

prometheus_observer::prometheus_observer(registry& reg, observer_options opts)
  : fams_(reg.families()), opts_(opts) {
  // Warm the strategy caches with the known names so the first assignments do
  // not take the shared table's lock.
  for (auto name : detail::known_strategies) {
    strategy_counter(placements_, false, name);
    strategy_counter(choices_, true, name);
  }
}

prometheus_observer::~prometheus_observer() {
  // Series of workers still present would otherwise stay behind and count
  // against the shared limit.
  for (auto& slot : workers_)
    release(slot);
}

prometheus::Counter&
prometheus_observer::strategy_counter(strategy_cache& cache, bool adaptive,
                                      std::string_view name) {
  if (cache.size > 0 && cache.names[cache.last] == name)
    return *cache.counters[cache.last];
  for (std::size_t i = 0; i < cache.size; ++i) {
    if (cache.names[i] == name) {
      cache.last = i;
      return *cache.counters[i];
    }
  }
  auto& shared = adaptive ? fams_.adaptive_choices : fams_.placements;
  auto& result = shared.get(name);
  if (cache.size < cache.names.size()) {
    cache.names[cache.size] = std::string{name};
    cache.counters[cache.size] = &result;
    cache.last = cache.size++;
  }
  return result;
}

void prometheus_observer::on_submitted(int priority) {
  fams_.submitted[prio(priority)]->Increment();
}

void prometheus_observer::on_assigned(std::size_t worker, int priority,
                                      std::string_view strategy,
                                      double wait_seconds) {
  fams_.assigned[prio(priority)]->Increment();
  fams_.assignment_wait->Observe(wait_seconds);
  strategy_counter(placements_, false, strategy).Increment();
  if (worker < workers_.size() && workers_[worker].assignments != nullptr)
    workers_[worker].assignments->Increment();
}

void prometheus_observer::on_completed(std::size_t worker, int priority,
                                       double exec_seconds) {
  fams_.completed[prio(priority)]->Increment();
  fams_.test_duration->Observe(exec_seconds);
  if (worker < workers_.size() && workers_[worker].completions != nullptr)
    workers_[worker].completions->Increment();
}

void prometheus_observer::on_failed(int, failure_kind why) {
  auto i = static_cast<std::size_t>(why);
  fams_.failed[i < detail::failure_kinds ? i : 0]->Increment();
}

void prometheus_observer::on_retried(int priority) {
  fams_.retried[prio(priority)]->Increment();
}

void prometheus_observer::on_requeued(int priority) {
  fams_.requeued[prio(priority)]->Increment();
}

void prometheus_observer::on_migrated() {
  fams_.migrated->Increment();
}

void prometheus_observer::on_stolen() {
  fams_.stolen->Increment();
}

void prometheus_observer::on_strategy_choice(std::string_view chosen) {
  strategy_counter(choices_, true, chosen).Increment();
}

void prometheus_observer::on_worker_joined(std::size_t worker,
                                           std::string_view id) {
  fams_.workers_joined->Increment();
  if (worker >= workers_.size())
    workers_.resize(worker + 1);
  auto& slot = workers_[worker];
  // A join for a slot still in use means the leave was never reported.
  release(slot);
  slot.present = true;
  std::lock_guard<std::mutex> guard{fams_.worker_mtx};
  if (fams_.worker_series >= opts_.max_worker_series) {
    fams_.workers_untracked->Increment();
    return;
  }
  ++fams_.worker_series;
  const prometheus::Labels labels{{"worker", std::string{id}}};
  slot.load = &fams_.worker_load->Add(labels);
  slot.active = &fams_.worker_active->Add(labels);
  slot.assignments = &fams_.worker_assignments->Add(labels);
  slot.completions = &fams_.worker_completions->Add(labels);
}

void prometheus_observer::on_worker_left(std::size_t worker, bool lost) {
  (lost ? fams_.workers_lost : fams_.workers_left)->Increment();
  if (worker < workers_.size())
    release(workers_[worker]);
}

void prometheus_observer::release(worker_slot& slot) {
  if (!slot.present)
    return;
  std::lock_guard<std::mutex> guard{fams_.worker_mtx};
  if (slot.load == nullptr) {
    fams_.workers_untracked->Decrement();
  } else {
    // Removing the series keeps cardinality bounded under churn; the freed
    // place goes to the next worker that joins.
    fams_.worker_load->Remove(slot.load);
    fams_.worker_active->Remove(slot.active);
    fams_.worker_assignments->Remove(slot.assignments);
    fams_.worker_completions->Remove(slot.completions);
    --fams_.worker_series;
  }
  slot = worker_slot{};
}

void prometheus_observer::on_worker_load(std::size_t worker, double load,
                                         int active_tests) {
  if (worker >= workers_.size() || workers_[worker].load == nullptr)
    return;
  workers_[worker].load->Set(load);
  workers_[worker].active->Set(active_tests);
}

void prometheus_observer::on_snapshot(const cluster_snapshot& snap) {
  for (std::size_t i = 0; i < detail::priority_levels; ++i)
    fams_.queue_depth[i]->Set(static_cast<double>(snap.queued_by_priority[i]));
  fams_.parked->Set(static_cast<double>(snap.parked));
  fams_.in_flight->Set(static_cast<double>(snap.assigned));
  fams_.workers_registered->Set(static_cast<double>(snap.workers));
  fams_.workers_busy->Set(static_cast<double>(snap.busy_workers));
  fams_.workers_idle->Set(static_cast<double>(
    snap.workers - std::min(snap.busy_workers, snap.workers)));
  fams_.load_mean->Set(snap.mean_load);
}

void prometheus_observer::observe_decision(double seconds, bool placed) {
  fams_.decision_time->Observe(seconds);
  (placed ? fams_.attempts_placed : fams_.attempts_deferred)->Increment();
}

void prometheus_observer::set_nodes(std::size_t n) {
  fams_.nodes->Set(static_cast<double>(n));
}

bool prometheus_observer::tracks_worker(std::size_t worker) const {
  return worker < workers_.size() && workers_[worker].load != nullptr;
}

} // namespace alb::metrics
