#include "runtime/cluster_state.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace alb {

namespace {

constexpr float eps = 1e-4f;

// Candidates a rebalancing decision looks at, at most: a bounded sample
// keeps a cycle's cost independent of the cluster's size.
constexpr size_t rebalance_sample = 32;

bool finite_nonneg(double x) {
  return std::isfinite(x) && x >= 0;
}

/// Which accelerator types a test needs (bit k = type k): tests that need
/// different ones wait for different workers, so one's deferral says
/// nothing about the other's.
unsigned accel_mask(const capacity_need& n) {
  unsigned m = 0;
  for (int k = 0; k < max_accel_types; ++k)
    if (n.accel[k] > 0)
      m |= 1u << k;
  return m;
}

/// Tests a dispatch pass holds back (a strategy's deferrals, and tests of a
/// kind no free worker can hold now) before it stops: bounds the pass.
constexpr int max_held_back_per_pass = 4096;

} // namespace

const char* to_string(test_status x) {
  switch (x) {
    case test_status::pending:
      return "pending";
    case test_status::assigned:
      return "assigned";
    case test_status::running:
      return "running";
    case test_status::completed:
      return "completed";
    case test_status::failed:
      return "failed";
    case test_status::cancelled:
      return "cancelled";
  }
  return "unknown";
}

const char* to_string(failure_kind x) {
  switch (x) {
    case failure_kind::execution:
      return "execution";
    case failure_kind::timeout:
      return "timeout";
    case failure_kind::unplaceable:
      return "unplaceable";
    case failure_kind::cancelled:
      return "cancelled";
  }
  return "unknown";
}

cluster_state::cluster_state(scheduler_config cfg) : cfg_(std::move(cfg)) {
  if (auto err = cfg_.validate(); !err.empty())
    throw std::invalid_argument(err);
  strategy_ = make_strategy(cfg_);
  next_rebalance_ = cfg_.rebalance_interval;
  moves_left_ = cfg_.max_moves_per_cycle;
}

cluster_state::~cluster_state() = default;

void cluster_state::set_strategy(std::unique_ptr<strategy> s) {
  if (s)
    strategy_ = std::move(s);
}

// -- accelerators ------------------------------------------------------------

int cluster_state::accel_index(std::string_view name) const {
  for (size_t i = 0; i < accel_names_.size(); ++i)
    if (accel_names_[i] == name)
      return static_cast<int>(i);
  return -1;
}

uint32_t cluster_state::intern_accel(const std::string& name) {
  if (auto i = accel_index(name); i >= 0)
    return static_cast<uint32_t>(i);
  if (accel_names_.size() >= static_cast<size_t>(max_accel_types))
    throw std::invalid_argument("too many accelerator types (at most "
                                + std::to_string(max_accel_types)
                                + "): cannot add '" + name + "'");
  accel_names_.push_back(name);
  return static_cast<uint32_t>(accel_names_.size() - 1);
}

// -- workers -----------------------------------------------------------------

uint32_t cluster_state::add_worker(worker_capabilities caps, double now) {
  if (caps.worker_id.empty())
    throw std::invalid_argument("worker_id must not be empty");
  if (!finite_nonneg(caps.available_memory))
    throw std::invalid_argument("worker " + caps.worker_id
                                + ": available_memory must be >= 0");
  accel_counts acc{};
  for (auto& [name, count] : caps.available_accelerators) {
    if (count < 0 || count > 30000)
      throw std::invalid_argument("worker " + caps.worker_id + ": accelerator "
                                  + name + " count out of range");
    if (count > 0)
      acc[intern_accel(name)] = static_cast<int16_t>(count);
  }
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<uint32_t>(workers_.size());
    workers_.emplace_back();
    outbox_.emplace_back();
    revoke_box_.emplace_back();
    live_pos_.push_back(0);
  }
  auto& w = workers_[slot];
  w = worker_slot{};
  w.slots = caps.max_concurrent_tests > 0 ? caps.max_concurrent_tests
                                          : std::max(1, caps.cpu_cores);
  w.capacity = w.slots + std::max(0, cfg_.prefetch);
  w.total_memory = w.free_memory = static_cast<float>(caps.available_memory);
  w.total_accel = w.free_accel = acc;
  w.alive = true;
  w.serial = stats_.worker_joined(caps.worker_id, now, w.slots);
  for (auto& b : caps.supported_backends)
    ++backend_count_[b];
  for (auto& [name, version] : caps.software_versions)
    ++software_count_[name];
  w.caps = std::move(caps);
  live_pos_[slot] = static_cast<uint32_t>(live_.size());
  live_.push_back(slot);
  refresh(slot);
  capacity_changed_ = true;
  if (obs_)
    obs_->on_worker_joined(slot, w.caps.worker_id);
  return slot;
}

void cluster_state::reserve_workers(size_t n) {
  workers_.reserve(n);
  outbox_.reserve(n);
  revoke_box_.reserve(n);
  live_pos_.reserve(n);
  live_.reserve(n);
  index_.reserve(static_cast<uint32_t>(
    std::min<size_t>(n, std::numeric_limits<uint32_t>::max() / 2)));
  stats_.reserve_workers(n);
}

void cluster_state::remove_worker(uint32_t slot, bool lost, double now) {
  if (slot >= workers_.size() || !workers_[slot].alive)
    return;
  auto& w = workers_[slot];
  // Tests waiting that this worker could hold: if it was the last one, their
  // wait for a worker that can hold them starts now (a scan of the waiting
  // tests, on a worker's leave only).
  note_fit_lost(w, now);
  // Everything the worker held goes back to the front of the queue: those
  // tests were submitted before anything still waiting behind them.
  auto held = std::move(w.held);
  w.held.clear();
  for (auto& h : held) {
    auto& t = tests_[h.ref];
    if (t.copy_of != npos) {
      // A copy goes with its worker; its original runs on.
      --in_flight_;
      count_placed(t, -1);
      tests_[t.copy_of].copy = npos;
      free_copy(h.ref);
      continue;
    }
    // The test starts over elsewhere; its copy, if any, stops.
    drop_copy(h.ref);
    t.fit_lost_at = now;
    end_move(t);
    --in_flight_;
    count_placed(t, -1);
    t.worker = npos;
    t.status = test_status::pending;
    if (!t.req.concurrency_key.empty())
      release_key(t.req.concurrency_key, now);
    stats_.requeued();
    if (obs_)
      obs_->on_requeued(t.req.priority);
    enqueue(h.ref, now, true);
  }
  outbox_[slot].clear();
  revoke_box_[slot].clear();
  drop_candidate(over_, &worker_slot::over_pos, slot);
  drop_candidate(idle_, &worker_slot::idle_pos, slot);
  w.alive = false;
  index_.clear(slot);
  for (auto& b : w.caps.supported_backends)
    --backend_count_[b];
  for (auto& [name, version] : w.caps.software_versions)
    --software_count_[name];
  auto pos = live_pos_[slot];
  live_[pos] = live_.back();
  live_pos_[live_[pos]] = pos;
  live_.pop_back();
  stats_.worker_left(w.serial, now);
  strategy_->on_worker_removed(slot);
  free_slots_.push_back(slot);
  capacity_changed_ = true;
  if (obs_)
    obs_->on_worker_left(slot, lost);
}

void cluster_state::update_load(uint32_t slot, const worker_load& load) {
  if (slot >= workers_.size() || !workers_[slot].alive)
    return;
  auto& w = workers_[slot];
  // Only load our own tests do not explain counts as external: the rest is
  // already in the reservation part of the score.
  auto own = std::min(1.0, static_cast<double>(load.active_tests) / w.slots);
  auto ext = std::clamp(load.cpu_utilization / 100.0 - own, 0.0, 1.0);
  w.external_load = static_cast<float>(ext);
  refresh(slot);
}

float cluster_state::load_of(uint32_t slot) const {
  auto& w = workers_[slot];
  float load
    = static_cast<float>(w.held.size()) / static_cast<float>(w.capacity);
  if (w.total_memory > 0)
    load = std::max(load, 1.0f - w.free_memory / w.total_memory);
  for (int k = 0; k < max_accel_types; ++k)
    if (w.total_accel[k] > 0)
      load = std::max(load, 1.0f
                              - static_cast<float>(w.free_accel[k])
                                  / static_cast<float>(w.total_accel[k]));
  return std::max(load, w.external_load);
}

void cluster_state::refresh(uint32_t slot) {
  auto& w = workers_[slot];
  capacity_leaf x;
  x.free_memory = w.free_memory;
  x.total_memory = w.total_memory;
  x.free_slots = static_cast<int16_t>(
    std::min<int>(w.capacity - static_cast<int>(w.held.size()), 30000));
  x.free_accel = w.free_accel;
  x.total_accel = w.total_accel;
  x.load = load_of(slot);
  index_.set(slot, x);
  update_candidates(slot, x.load);
}

bool cluster_state::eligible(uint32_t slot, const test_record& t) const {
  if (slot == t.excluded)
    return false;
  return t.cons.empty() || meets(*t.cons, workers_[slot].caps);
}

// -- tests -------------------------------------------------------------------

std::string validate_requirements(const test_requirements& req) {
  if (req.test_id.empty())
    return "test_id must not be empty";
  if (req.priority < 1 || req.priority > 5)
    return "priority must be 1 (highest) to 5, got "
           + std::to_string(req.priority);
  if (!finite_nonneg(req.minimum_memory))
    return "minimum_memory must be >= 0";
  if (!finite_nonneg(req.expected_duration) || !finite_nonneg(req.timeout)
      || !finite_nonneg(req.wait_limit))
    return "durations must be >= 0";
  if (req.retries < 0)
    return "retries must be >= 0";
  for (auto& [name, count] : req.required_accelerators)
    if (count < 0 || count > 30000)
      return "accelerator " + name + " count out of range";
  std::string error;
  if (!parse_constraints(req, error))
    return error;
  return {};
}

cluster_state::submit_status cluster_state::submit(test_requirements req,
                                                   double now) {
  return submit_at(std::move(req), test_run{}, now, now);
}

cluster_state::submit_status cluster_state::adopt(handed_test&& h, double now,
                                                  bool stolen) {
  auto res = submit_at(std::move(h.req), std::move(h.run), now,
                       std::min(h.submitted_at, now), stolen);
  if (res == submit_status::accepted && stolen)
    stats_.stolen();
  return res;
}

size_t cluster_state::hand_over(size_t max, double max_memory,
                                std::vector<handed_test>& out) {
  size_t n = 0;
  auto plain = [&](const test_record& t) {
    return t.attempts == 0 && !t.handed && t.req.concurrency_key.empty()
           && accel_mask(t.need) == 0 && t.cons.empty()
           && t.req.minimum_memory <= max_memory;
  };
  // The lowest band's newest tests would wait longest here. Only the back
  // of each class is looked at: the first test that may not move ends that
  // class's share, so the cost stays O(taken + stale).
  for (size_t p = queue_.size(); p-- > 0 && n < max;) {
    for (size_t k = 0; k < size_classes && n < max; ++k) {
      auto& q = queue_[p][k];
      while (!q.empty() && n < max) {
        auto h = q.back();
        auto& t = tests_[h.ref];
        bool live = t.live && t.gen == h.gen && t.queued && t.band == p
                    && t.size_class == k;
        if (live && !plain(t))
          break;
        q.pop_back();
        if (!live)
          continue;
        count_queued(t, -1);
        t.queued = false;
        handed_test moved;
        moved.submitted_at = t.submitted_at;
        moved.run = t.run.take();
        by_id_.erase(t.req.test_id, h.ref,
                     [this](uint32_t r) -> std::string_view {
                       return tests_[r].req.test_id;
                     });
        moved.req = std::move(t.req);
        t.req = test_requirements{};
        t.run = test_run{};
        t.live = false;
        ++t.gen;
        free_tests_.push_back(h.ref);
        --open_;
        stats_.handed_over();
        out.push_back(std::move(moved));
        ++n;
      }
    }
  }
  return n;
}

cluster_state::submit_status cluster_state::submit(test_requirements req,
                                                   test_run run, double now) {
  return submit_at(std::move(req), std::move(run), now, now);
}

cluster_state::submit_status
cluster_state::submit_at(test_requirements&& req, test_run&& run, double now,
                         double submitted_at, bool handed) {
  auto invalid = [&](std::string what) {
    last_error_ = "test '" + req.test_id + "': " + what;
    return submit_status::invalid;
  };
  if (auto err = validate_requirements(req); !err.empty())
    return invalid(err);
  std::string cons_error;
  auto cons = parse_constraints(req, cons_error);
  if (!cons)
    return invalid(cons_error);
  capacity_need need;
  need.memory = static_cast<float>(req.minimum_memory);
  for (auto& [name, count] : req.required_accelerators) {
    if (count == 0)
      continue;
    try {
      need.accel[intern_accel(name)] = static_cast<int16_t>(count);
    } catch (const std::invalid_argument& e) {
      return invalid(e.what());
    }
  }
  auto key_of
    = [this](uint32_t r) -> std::string_view { return tests_[r].req.test_id; };
  if (by_id_.find(req.test_id, key_of) != id_index::npos) {
    last_error_ = "test '" + req.test_id + "' is already submitted";
    return submit_status::duplicate;
  }
  uint32_t ref;
  if (!free_tests_.empty()) {
    ref = free_tests_.back();
    free_tests_.pop_back();
  } else {
    ref = static_cast<uint32_t>(tests_.size());
    tests_.emplace_back();
  }
  auto& t = tests_[ref];
  auto gen = t.gen;
  // The state is reset as a whole; the requirements are overwritten below
  // (a whole new record would move every string twice).
  static_cast<test_record_state&>(t) = test_record_state{};
  t.gen = gen + 1;
  t.need = need;
  t.cons = std::move(*cons);
  t.req = std::move(req);
  t.band = static_cast<uint8_t>(t.req.priority - 1);
  t.run = std::move(run);
  t.submitted_at = submitted_at;
  t.handed = handed;
  t.live = true;
  by_id_.insert(t.req.test_id, ref, key_of);
  ++open_;
  stats_.submitted(submitted_at);
  if (obs_)
    obs_->on_submitted(t.req.priority);
  enqueue(ref, now, false);
  return submit_status::accepted;
}

int cluster_state::size_class_of(double seconds) {
  if (!(seconds > 0))
    return 0;
  // Half-octaves: 1, 2, 5 and 10 s land in different classes.
  auto k = static_cast<int>(std::floor(2 * std::log2(seconds))) + 9;
  return std::clamp(k, 1, size_classes - 1);
}

void cluster_state::count_queued(const test_record& t, int delta) {
  auto p = static_cast<size_t>(t.req.priority - 1);
  auto k = static_cast<size_t>(t.size_class);
  queued_count_[p]
    = static_cast<size_t>(static_cast<long long>(queued_count_[p]) + delta);
  class_count_[p][k]
    = static_cast<uint32_t>(static_cast<long long>(class_count_[p][k]) + delta);
  if (class_count_[p][k] > 0)
    class_mask_[p] |= 1u << k;
  else
    class_mask_[p] &= ~(1u << k);
  auto work = delta * std::max(0.0, t.req.expected_duration);
  queued_work_ += work;
  if (accel_mask(t.need) != 0) {
    accel_class_count_[k] = static_cast<uint32_t>(
      static_cast<long long>(accel_class_count_[k]) + delta);
    queued_accel_work_ += work;
  }
}

void cluster_state::count_placed(const test_record& t, int delta) {
  auto work = delta * std::max(0.0, t.req.expected_duration);
  placed_work_ += work;
  if (accel_mask(t.need) != 0)
    placed_accel_work_ += work;
}

void cluster_state::enqueue(uint32_t ref, double now, bool front) {
  auto& t = tests_[ref];
  t.status = test_status::pending;
  t.queued = true;
  t.enqueued_at = front ? std::min(now, t.submitted_at) : now;
  t.size_class = static_cast<uint8_t>(
    strategy_->longest_first() ? size_class_of(t.req.expected_duration) : 0);
  auto& q = queue_[static_cast<size_t>(t.req.priority - 1)][t.size_class];
  if (front)
    q.push_front(test_handle{ref, t.gen});
  else
    q.push_back(test_handle{ref, t.gen});
  count_queued(t, +1);
}

void cluster_state::requeue_front(uint32_t ref) {
  // Back to the front of its class, keeping its place and its age.
  auto& t = tests_[ref];
  t.queued = true;
  queue_[static_cast<size_t>(t.req.priority - 1)][t.size_class].push_front(
    test_handle{ref, t.gen});
  count_queued(t, +1);
}

size_t cluster_state::queued() const {
  size_t n = 0;
  for (auto c : queued_count_)
    n += c;
  return n;
}

size_t cluster_state::queued_at_least(int k, bool accel_only) const {
  size_t n = 0;
  auto from = static_cast<size_t>(std::clamp(k, 0, size_classes - 1));
  if (accel_only) {
    for (size_t j = from; j < accel_class_count_.size(); ++j)
      n += accel_class_count_[j];
    return n;
  }
  for (auto& band : class_count_)
    for (size_t j = from; j < band.size(); ++j)
      n += band[j];
  return n;
}

std::deque<test_handle>& cluster_state::live_front(size_t p, size_t k) {
  // Entries of tests that ended or moved while queued are dropped here,
  // on the way, rather than searched for when they leave.
  auto& q = queue_[p][k];
  while (!q.empty()) {
    auto& h = q.front();
    auto& t = tests_[h.ref];
    if (t.live && t.gen == h.gen && t.queued && t.band == p
        && t.size_class == k)
      break;
    q.pop_front();
  }
  return q;
}

bool cluster_state::take_front(size_t p, size_t k, uint32_t& ref) {
  auto& q = live_front(p, k);
  if (q.empty())
    return false; // unreachable: a counted class has a live entry
  ref = q.front().ref;
  q.pop_front();
  count_queued(tests_[ref], -1);
  tests_[ref].queued = false;
  return true;
}

bool cluster_state::pop_longest(double now, uint32_t& ref, unsigned allowed) {
  // Longest expected first across the bands: every aging_interval a test
  // has waited lifts it one size class (a half-octave), so a stream of
  // long tests cannot starve short ones; equal classes go to the better
  // priority, then the older test.
  int best_p = -1, best_k = -1;
  double best_eff = 0, best_at = 0;
  for (size_t p = 0; p < queue_.size(); ++p) {
    for (auto m = class_mask_[p] & allowed; m != 0; m &= m - 1) {
      auto k = static_cast<size_t>(__builtin_ctz(m));
      auto& q = live_front(p, k);
      if (q.empty())
        continue;
      auto at = tests_[q.front().ref].enqueued_at;
      double eff = static_cast<double>(k);
      if (cfg_.aging_interval > 0)
        eff += std::floor((now - at) / cfg_.aging_interval);
      if (best_p < 0 || eff > best_eff
          || (eff == best_eff && at < best_at - 1e-12)) {
        best_p = static_cast<int>(p);
        best_k = static_cast<int>(k);
        best_eff = eff;
        best_at = at;
      }
    }
  }
  if (best_p < 0)
    return false;
  return take_front(static_cast<size_t>(best_p), static_cast<size_t>(best_k),
                    ref);
}

bool cluster_state::pop_best(double now, uint32_t& ref, int cap) {
  if (cap < 0)
    return false;
  auto allowed = cap >= 31 ? ~0u : (2u << cap) - 1;
  if (!cfg_.strict_priority && strategy_->longest_first())
    return pop_longest(now, ref, allowed);
  int best = -1;
  double best_eff = 0;
  double best_at = 0;
  for (size_t p = 0; p < queue_.size(); ++p) {
    auto mask = class_mask_[p];
    if ((mask & allowed) == 0)
      continue;
    // The band's age is that of its oldest test.
    double oldest = 0;
    bool any = false;
    for (auto m = mask; m != 0; m &= m - 1) {
      auto k = static_cast<size_t>(__builtin_ctz(m));
      auto& q = live_front(p, k);
      if (q.empty())
        continue;
      auto at = tests_[q.front().ref].enqueued_at;
      if (!any || at < oldest)
        oldest = at;
      any = true;
    }
    if (!any)
      continue;
    // Aging: every aging_interval of waiting lifts the test one priority
    // step, so a stream of priority 1 cannot starve priority 5 forever.
    double eff = static_cast<double>(p + 1);
    if (cfg_.aging_interval > 0)
      eff -= std::floor((now - oldest) / cfg_.aging_interval);
    eff = std::max(eff, 1.0);
    if (best < 0 || eff < best_eff || (eff == best_eff && oldest < best_at)) {
      best = static_cast<int>(p);
      best_eff = eff;
      best_at = oldest;
    }
  }
  if (best < 0)
    return false;
  auto p = static_cast<size_t>(best);
  // The longest allowed class (a strategy taking first in, first out has
  // every test in class 0).
  auto m = class_mask_[p] & allowed;
  return take_front(p, static_cast<size_t>(31 - __builtin_clz(m)), ref);
}

void cluster_state::dispatch(double now) {
  if (capacity_changed_ && parked_count_ > 0)
    scan_parked(now);
  capacity_changed_ = false;
  uint32_t ref;
  // A strategy that takes the longest test first keeps a test that fits
  // no free worker now (but one that is busy) queued in its size class
  // instead of parking it: the parked lists are retried in rotation, which
  // would lose the longest-first order, so the long tests of a scarce kind
  // (GPU tests) came last. Per kind of test (the accelerators it needs),
  // the least memory such a test needed: a test of that kind needing as
  // much or more fits nowhere either in this pass and is held back without
  // a search.
  bool keep_queued = strategy_->longest_first();
  std::array<float, 1u << max_accel_types> full;
  full.fill(std::numeric_limits<float>::infinity());
  int held = 0;
  held_back_.clear();
  held_back_accel_ = 0;
  // Per kind of test, the size class the strategy last deferred in this
  // pass: the next test of that kind and class waits on the same busy
  // faster workers and is held back without asking again (in the
  // shipped benchmark's 20 x 500 cell every test was otherwise offered 69
  // times on average before it started).
  std::array<int, 1u << max_accel_types> deferred_class;
  deferred_class.fill(-1);
  // Stop as soon as no worker has a free slot: the queue keeps its order
  // instead of spilling into the parked lists.
  while (index_.any_free_slot() && pop_best(now, ref)) {
    auto& t = tests_[ref];
    if (!t.req.concurrency_key.empty()
        && key_busy_[t.req.concurrency_key] > 0) {
      key_waiters_[t.req.concurrency_key].push_back(test_handle{ref, t.gen});
      t.key_waiting = true;
      ++key_waiting_count_;
      ++key_waiting_by_prio_[static_cast<size_t>(t.req.priority - 1)];
      continue;
    }
    auto& kind_full = full[accel_mask(t.need)];
    if (keep_queued
        && (t.need.memory >= kind_full
            || deferred_class[accel_mask(t.need)] == t.size_class)) {
      hold_back(ref);
      if (++held >= max_held_back_per_pass)
        break;
      continue;
    }
    if (try_place(ref, now))
      continue;
    if (strategy_->deferred()) {
      if (keep_queued)
        deferred_class[accel_mask(t.need)] = t.size_class;
      // Waiting for a better worker is not being unplaceable: the test
      // stays queued (not parked, so pulls go on) and is offered again on
      // the next pass, at most once per pass. Tests after it are offered
      // too: the strategy sees how many wait ahead of them (`held_back`).
      hold_back(ref);
      if (++held >= max_held_back_per_pass)
        break;
      continue;
    }
    // Only plain requirements: a test with software, tag or backend needs
    // (or one that failed on a worker) takes the parked path, which names
    // why it waits.
    if (keep_queued && t.cons.empty() && t.req.required_backend.empty()
        && t.excluded == npos && index_.any_could_fit(t.need)) {
      kind_full = std::min(kind_full, t.need.memory);
      hold_back(ref);
      if (++held >= max_held_back_per_pass)
        break;
      continue;
    }
    park(ref);
  }
  // Back in their classes in their order, ahead of the rest.
  for (auto it = held_back_.rbegin(); it != held_back_.rend(); ++it)
    requeue_front(*it);
  held_back_.clear();
  held_back_accel_ = 0;
}

void cluster_state::hold_back(uint32_t ref) {
  held_back_.push_back(ref);
  if (accel_mask(tests_[ref].need) != 0)
    ++held_back_accel_;
}

size_t cluster_state::held_back(bool accel_only) const {
  return accel_only ? held_back_accel_ : held_back_.size();
}

// -- speculation -------------------------------------------------------------

namespace {

/// A copy runs only when it is expected to finish in less than this share
/// of the time the original still needs: a copy costs a whole run, and
/// the estimates are learned, so it must win by a clear margin.
constexpr double speculation_gain = 0.5;

/// The least share of its learned duration a running test is assumed to
/// still need, however long it has run (one past its estimate is late by
/// an unknown amount, not about to end).
constexpr double min_left_share = 0.25;

/// Workers `speculate` looks at per call.
constexpr size_t speculation_sweep = 256;

} // namespace

void cluster_state::speculate(double now) {
  // Only slots nothing else could use: with tests waiting, a free worker
  // takes one of them instead.
  if (!cfg_.speculate || live_.empty() || queued() > 0 || parked_count_ > 0
      || key_waiting_count_ > 0 || !index_.any_free_slot())
    return;
  auto budget = std::min(live_.size(), speculation_sweep);
  for (size_t i = 0; i < budget && index_.any_free_slot(); ++i) {
    if (spec_cursor_ >= live_.size())
      spec_cursor_ = 0;
    auto slot = live_[spec_cursor_++];
    auto& w = workers_[slot];
    for (size_t j = 0; j < w.held.size(); ++j) {
      auto h = w.held[j];
      auto& t = tests_[h.ref];
      // Keyed tests must never run twice at once.
      if (!t.live || t.gen != h.gen || t.copy_of != npos || t.speculated
          || !t.req.speculate || !t.req.concurrency_key.empty() || t.revoking)
        continue;
      // Running since its start, or since its placement when its worker
      // started it at once (a free slot took it).
      auto since = t.started_at >= 0                            ? t.started_at
                   : static_cast<int>(w.held.size()) <= w.slots ? t.assigned_at
                                                                : -1.0;
      if (since < 0)
        continue;
      auto est = strategy_->expected_seconds(t, slot, *this);
      if (!(est > 0))
        continue;
      auto left = std::max(est - (now - since), min_left_share * est);
      auto target = strategy_->pick_copy(t, *this, slot);
      // The strategy knows only the worker to avoid: a real command's copy
      // then goes to the least loaded worker it may go to.
      if (target != npos && target < workers_.size()
          && !may_copy_to(t, slot, target))
        target = index_.least_loaded(t.need, [&](uint32_t s) {
          return may_copy_to(t, slot, s) && eligible(s, t);
        });
      if (target == npos || target >= workers_.size() || !workers_[target].alive
          || !fits_now(target, t) || !may_copy_to(t, slot, target))
        continue;
      auto there = strategy_->expected_seconds(t, target, *this);
      if (there > 0 && there < left * speculation_gain)
        place_copy(h.ref, target, now);
    }
  }
}

bool cluster_state::may_copy_to(const test_record& t, uint32_t from,
                                uint32_t to) const {
  if (to == from)
    return false;
  if (t.run.empty())
    return true;
  // Two runs of one command on one machine may clash on its files (its
  // cwd, fixed paths, ports): a real copy goes to another node, and only
  // where a slot starts it at once (a copy waiting in a local queue is
  // not sooner).
  auto& a = workers_[from];
  auto& b = workers_[to];
  return !a.caps.node.empty() && !b.caps.node.empty()
         && a.caps.node != b.caps.node
         && static_cast<int>(b.held.size()) < b.slots;
}

void cluster_state::place_copy(uint32_t ref, uint32_t slot, double now) {
  uint32_t cref;
  if (!free_tests_.empty()) {
    cref = free_tests_.back();
    free_tests_.pop_back();
  } else {
    cref = static_cast<uint32_t>(tests_.size());
    tests_.emplace_back(); // growth never moves records: `t` stays valid
  }
  auto& t = tests_[ref];
  auto& c = tests_[cref];
  auto gen = c.gen;
  c = test_record{};
  c.gen = gen + 1;
  c.req = t.req;
  c.band = t.band;
  c.run = t.run;
  c.need = t.need;
  c.cons = t.cons;
  c.submitted_at = t.submitted_at;
  c.attempts = 1;
  c.live = true;
  c.copy_of = ref;
  t.copy = cref;
  t.speculated = true;
  ++copies_;
  place_reserve(cref, slot, now);
  stats_.speculated();
  if (obs_)
    obs_->on_speculated();
}

void cluster_state::drop_copy(uint32_t ref) {
  auto& t = tests_[ref];
  if (t.copy == npos)
    return;
  auto cref = t.copy;
  auto& c = tests_[cref];
  if (c.worker != npos) {
    cancels_.emplace_back(c.worker, test_handle{cref, c.gen});
    release(cref);
  }
  t.copy = npos;
  free_copy(cref);
}

void cluster_state::free_copy(uint32_t ref) {
  auto& c = tests_[ref];
  c.live = false;
  c.worker = npos;
  c.copy_of = npos;
  if (!c.run.empty())
    c.run = test_run{};
  ++c.gen;
  free_tests_.push_back(ref);
  --copies_;
}

bool cluster_state::complete_copy(uint32_t slot, test_handle h,
                                  const attempt_outcome& o, double now) {
  auto& c = tests_[h.ref];
  auto oref = c.copy_of;
  auto& t = tests_[oref];
  auto exec = std::max(0.0, o.exec_seconds);
  // What the copy ran teaches the strategy this worker's pace as any run.
  strategy_->on_result(c, slot, *this, exec, o.success);
  stats_.worker_ran(workers_[slot].serial, exec, o.success);
  release(h.ref);
  t.copy = npos;
  free_copy(h.ref);
  // A failed copy changes nothing: the original runs on.
  if (!o.success)
    return true;
  // The copy won: the original stops without a report and the test ends
  // with the copy's result, on the copy's worker.
  stats_.speculation_won();
  t.copy_won = true;
  if (obs_)
    obs_->on_speculation_win();
  if (t.worker != npos) {
    cancels_.emplace_back(t.worker, test_handle{oref, t.gen});
    release(oref);
  }
  // It started when its own worker took it, long before the copy.
  mark_started(t, t.assigned_at >= 0 ? t.assigned_at : now - exec);
  t.last_serial = workers_[slot].serial;
  if (!t.req.concurrency_key.empty())
    release_key(t.req.concurrency_key, now);
  end(oref, test_status::completed, &o, failure_kind::execution, now, slot);
  return true;
}

void cluster_state::refill(uint32_t slot, double now) {
  if (cfg_.pull_slack <= 0 || !strategy_->ranks_by_load()
      || slot >= workers_.size() || !workers_[slot].alive || parked_count_ > 0)
    return;
  auto& w = workers_[slot];
  uint32_t ref;
  while (static_cast<int>(w.held.size()) < w.capacity
         && load_of(slot) <= index_.min_load() + cfg_.pull_slack
         && pop_best(now, ref)) {
    auto& t = tests_[ref];
    if (!t.req.concurrency_key.empty()
        && key_busy_[t.req.concurrency_key] > 0) {
      key_waiters_[t.req.concurrency_key].push_back(test_handle{ref, t.gen});
      t.key_waiting = true;
      ++key_waiting_count_;
      ++key_waiting_by_prio_[static_cast<size_t>(t.req.priority - 1)];
      continue;
    }
    if (!fits_now(slot, t)) {
      requeue_front(ref);
      break;
    }
    stats_.placement_try();
    assign(ref, slot, now);
  }
}

bool cluster_state::try_place(uint32_t ref, double now) {
  auto& t = tests_[ref];
  stats_.placement_try();
  auto slot = strategy_->pick(t, *this);
  if (slot == npos && t.excluded != npos) {
    // A retry prefers another worker, but the one it failed on is better
    // than waiting when nothing else fits.
    auto ex = t.excluded;
    t.excluded = npos;
    slot = strategy_->pick(t, *this);
    if (slot == npos)
      t.excluded = ex;
  }
  // The index guarantees the fit; checking again costs little and keeps a
  // faulty strategy from ever oversubscribing a worker.
  if (slot == npos || slot >= workers_.size() || !workers_[slot].alive
      || !fits_now(slot, t))
    return false;
  assign(ref, slot, now);
  return true;
}

void cluster_state::assign(uint32_t ref, uint32_t slot, double now) {
  auto& t = tests_[ref];
  if (t.attempts++ == 0)
    stats_.first_assignment();
  ++placements_;
  place_reserve(ref, slot, now);
  auto choice = strategy_->last_choice();
  if (choice != strategy_->name()) {
    stats_.strategy_choice(choice);
    if (obs_)
      obs_->on_strategy_choice(choice);
  }
  if (obs_)
    obs_->on_assigned(slot, t.req.priority, choice, now - t.submitted_at);
}

// The part of a placement a move repeats: reservation, hold, outbox. A moved
// test is not a new attempt, so attempts and decision counts stay as they
// are.
void cluster_state::place_reserve(uint32_t ref, uint32_t slot, double now) {
  auto& t = tests_[ref];
  auto& w = workers_[slot];
  ++t.gen;
  t.status = test_status::assigned;
  t.worker = slot;
  t.last_serial = w.serial;
  t.assigned_at = now;
  t.placed_seq = ++placed_seq_;
  w.free_memory -= t.need.memory;
  for (int k = 0; k < max_accel_types; ++k)
    w.free_accel[k] = static_cast<int16_t>(w.free_accel[k] - t.need.accel[k]);
  t.held_at = static_cast<uint32_t>(w.held.size());
  w.held.push_back(test_handle{ref, t.gen});
  ++w.assignments;
  ++in_flight_;
  count_placed(t, +1);
  if (!t.req.concurrency_key.empty())
    ++key_busy_[t.req.concurrency_key];
  double mem_frac
    = w.total_memory > 0 ? 1.0 - w.free_memory / w.total_memory : 0.0;
  double acc_frac = 0;
  for (int k = 0; k < max_accel_types; ++k)
    if (w.total_accel[k] > 0)
      acc_frac = std::max(
        acc_frac,
        1.0 - static_cast<double>(w.free_accel[k]) / w.total_accel[k]);
  stats_.reservation(mem_frac, acc_frac);
  stats_.worker_assigned(w.serial);
  auto& box = outbox_[slot];
  if (box.empty())
    outbox_dirty_.push_back(slot);
  box.push_back(test_handle{ref, t.gen});
  refresh(slot);
}

void cluster_state::release(uint32_t ref) {
  auto& t = tests_[ref];
  end_move(t);
  auto slot = t.worker;
  auto& w = workers_[slot];
  auto& held = w.held;
  // By its recorded index, not a scan: a node of 2,500 slots is one worker
  // holding up to 2,500 tests, and a scan per end made a test's cost grow
  // with the node's size. The last one moves into the gap.
  size_t i = t.held_at;
  if (i < held.size() && held[i].ref == ref) {
    held[i] = held.back();
    held.pop_back();
    if (i < held.size())
      tests_[held[i].ref].held_at = static_cast<uint32_t>(i);
  }
  w.free_memory = std::min(w.total_memory, w.free_memory + t.need.memory);
  for (int k = 0; k < max_accel_types; ++k)
    w.free_accel[k] = static_cast<int16_t>(
      std::min<int>(w.total_accel[k], w.free_accel[k] + t.need.accel[k]));
  --in_flight_;
  count_placed(t, -1);
  t.worker = npos;
  refresh(slot);
  capacity_changed_ = true;
}

void cluster_state::release_key(const std::string& key, double now) {
  auto it = key_busy_.find(key);
  if (it == key_busy_.end())
    return;
  if (--it->second > 0)
    return;
  key_busy_.erase(it);
  auto wit = key_waiters_.find(key);
  if (wit == key_waiters_.end())
    return;
  auto& waiters = wit->second;
  // Wake every waiter: the first to be placed takes the key and the others
  // go back to waiting. Waking only one would lose the wake-up when that
  // one ends without ever taking the key (cancelled, unplaceable).
  while (!waiters.empty()) {
    auto h = waiters.back();
    waiters.pop_back();
    auto& t = tests_[h.ref];
    if (t.live && t.gen == h.gen && t.key_waiting) {
      t.key_waiting = false;
      --key_waiting_count_;
      --key_waiting_by_prio_[static_cast<size_t>(t.req.priority - 1)];
      // Pushing the newest first onto the front keeps the oldest first.
      enqueue(h.ref, now, true);
    }
  }
  if (waiters.empty())
    key_waiters_.erase(wit);
}

void cluster_state::mark_started(test_record& t, double at) {
  if (t.started_at >= 0)
    return;
  t.started_at = std::max(at, t.submitted_at);
  auto wait = t.started_at - t.submitted_at;
  stats_.started(wait, t.req.priority);
  ++delta_.started;
  delta_.latency_sum += wait;
}

void cluster_state::started(uint32_t slot, test_handle h, double now) {
  if (h.ref >= tests_.size())
    return;
  auto& t = tests_[h.ref];
  if (!t.live || t.gen != h.gen || t.worker != slot)
    return;
  t.status = test_status::running;
  if (t.copy_of != npos) {
    // A copy's start is no test's start: the statistics count its original.
    if (t.started_at < 0)
      t.started_at = now;
    return;
  }
  mark_started(t, now);
}

uint32_t cluster_state::holder(test_handle h) const {
  if (h.ref >= tests_.size())
    return npos;
  auto& t = tests_[h.ref];
  if (!t.live || t.gen != h.gen
      || (t.status != test_status::assigned
          && t.status != test_status::running))
    return npos;
  return t.worker;
}

bool cluster_state::complete(uint32_t slot, test_handle h,
                             const attempt_outcome& o, double now) {
  if (h.ref >= tests_.size())
    return false;
  auto& t = tests_[h.ref];
  if (!t.live || t.gen != h.gen || t.worker != slot
      || (t.status != test_status::assigned
          && t.status != test_status::running))
    return false;
  if (t.copy_of != npos)
    return complete_copy(slot, h, o, now);
  // The original reported first: its copy stops.
  drop_copy(h.ref);
  auto exec = std::max(0.0, o.exec_seconds);
  mark_started(t, now - exec);
  auto serial = workers_[slot].serial;
  strategy_->on_result(t, slot, *this, exec, o.success);
  stats_.worker_ran(serial, exec, o.success);
  release(h.ref);
  if (!t.req.concurrency_key.empty())
    release_key(t.req.concurrency_key, now);
  if (o.success) {
    end(h.ref, test_status::completed, &o, failure_kind::execution, now, slot);
    return true;
  }
  if (t.failures < t.req.retries) {
    ++t.failures;
    t.excluded = slot;
    stats_.retried();
    if (obs_)
      obs_->on_retried(t.req.priority);
    enqueue(h.ref, now, true);
    return true;
  }
  end(h.ref, test_status::failed, &o,
      o.timed_out ? failure_kind::timeout : failure_kind::execution, now, slot);
  return true;
}

bool cluster_state::cancel(std::string_view test_id, double now, uint32_t* slot,
                           test_handle* placement) {
  if (slot)
    *slot = npos;
  auto ref = by_id_.find(test_id, [this](uint32_t r) -> std::string_view {
    return tests_[r].req.test_id;
  });
  if (ref == id_index::npos)
    return false;
  auto& t = tests_[ref];
  drop_copy(ref);
  if (t.worker != npos) {
    if (slot)
      *slot = t.worker;
    if (placement)
      *placement = test_handle{ref, t.gen};
    release(ref);
    if (!t.req.concurrency_key.empty())
      release_key(t.req.concurrency_key, now);
  }
  attempt_outcome o;
  o.success = false;
  o.error = "cancelled";
  end(ref, test_status::cancelled, &o, failure_kind::cancelled, now);
  return true;
}

uint32_t cluster_state::placed_slot(std::string_view test_id) const {
  auto ref = by_id_.find(test_id, [this](uint32_t r) -> std::string_view {
    return tests_[r].req.test_id;
  });
  if (ref == id_index::npos || !tests_[ref].live)
    return npos;
  return tests_[ref].worker;
}

void cluster_state::end(uint32_t ref, test_status status,
                        const attempt_outcome* o, failure_kind why, double now,
                        uint32_t slot) {
  auto& t = tests_[ref];
  t.status = status;
  auto p = static_cast<size_t>(t.req.priority - 1);
  if (t.queued) {
    count_queued(t, -1);
    t.queued = false;
  }
  if (t.parked) {
    --parked_count_;
    --parked_by_prio_[p];
    parked_work_ -= std::max(0.0, t.req.expected_duration);
    t.parked = false;
  }
  if (t.key_waiting) {
    --key_waiting_count_;
    --key_waiting_by_prio_[p];
    t.key_waiting = false;
  }
  switch (status) {
    case test_status::completed:
      stats_.completed(now, o ? o->exec_seconds : 0, now - t.submitted_at);
      ++delta_.completed;
      if (obs_)
        obs_->on_completed(slot, t.req.priority, o ? o->exec_seconds : 0);
      break;
    case test_status::cancelled:
      stats_.cancelled(now);
      if (obs_)
        obs_->on_failed(t.req.priority, failure_kind::cancelled);
      break;
    default:
      stats_.failed(now, why == failure_kind::timeout,
                    why == failure_kind::unplaceable);
      if (obs_)
        obs_->on_failed(t.req.priority, why);
      break;
  }
  if (on_end_) {
    auto a = view(t);
    a.completed_at = now;
    a.success = status == test_status::completed;
    if (o) {
      a.execution_time = o->exec_seconds;
      a.error = o->error;
    }
    on_end_(a, o);
  }
  by_id_.erase(t.req.test_id, ref, [this](uint32_t r) -> std::string_view {
    return tests_[r].req.test_id;
  });
  t.live = false;
  ++t.gen;
  // The record keeps its strings until reuse overwrites them: freeing them
  // here would only add work on the hot path. A command and environment
  // may be large, though, and a simulated test has none to free.
  if (!t.run.empty())
    t.run = test_run{};
  free_tests_.push_back(ref);
  --open_;
}

void cluster_state::park(uint32_t ref) {
  auto& t = tests_[ref];
  t.parked = true;
  ++parked_count_;
  ++parked_by_prio_[static_cast<size_t>(t.req.priority - 1)];
  parked_work_ += std::max(0.0, t.req.expected_duration);
  parked_[static_cast<size_t>(t.req.priority - 1)].push_back(
    test_handle{ref, t.gen});
}

void cluster_state::scan_parked(double now) {
  auto budget = std::max(1, cfg_.parked_scan_limit);
  // As in `dispatch`: once the strategy holds a test back for a better
  // worker, a test of its kind as long or longer would wait too, so it is
  // not tried.
  std::array<int, 1u << max_accel_types> caps;
  caps.fill(size_classes - 1);
  for (auto& dq : parked_) {
    // Rotate through the list so every parked test gets its turn even when
    // the ones at the front never fit.
    auto n = dq.size();
    for (size_t i = 0; i < n && budget > 0 && index_.any_free_slot(); ++i) {
      auto h = dq.front();
      dq.pop_front();
      auto& t = tests_[h.ref];
      if (!t.live || t.gen != h.gen || !t.parked)
        continue;
      --budget;
      if (!t.req.concurrency_key.empty()
          && key_busy_[t.req.concurrency_key] > 0) {
        dq.push_back(h);
        continue;
      }
      // The root's maxima rule out most hopeless tries in O(1); only real
      // tries count as scheduling attempts.
      auto& cap = caps[accel_mask(t.need)];
      if (!index_.may_fit_now(t.need) || static_cast<int>(t.size_class) > cap) {
        dq.push_back(h);
        continue;
      }
      auto p = static_cast<size_t>(t.req.priority - 1);
      auto work = std::max(0.0, t.req.expected_duration);
      t.parked = false;
      --parked_count_;
      --parked_by_prio_[p];
      parked_work_ -= work;
      if (!try_place(h.ref, now)) {
        if (strategy_->deferred())
          cap = static_cast<int>(t.size_class) - 1;
        t.parked = true;
        ++parked_count_;
        ++parked_by_prio_[p];
        parked_work_ += work;
        dq.push_back(h);
      }
    }
  }
}

bool cluster_state::could_ever_fit(const test_record& t) const {
  return index_.any_could_fit(t.need) && unmet_reason(t).empty();
}

std::string cluster_state::unmet_reason(const test_record& t) const {
  // workers_ keeps every slot ever handed out: empty means none joined,
  // otherwise all of them left and "has joined" would be untrue.
  if (live_.empty())
    return workers_.empty()
             ? "no node has joined"
             : "no node is connected (every node that joined has left)";
  // Each requirement on its own first, so the reason names the one no
  // worker meets; then all of them at once on one worker.
  auto has_memory
    = [&](const worker_slot& w) { return w.total_memory >= t.need.memory; };
  if (std::none_of(live_.begin(), live_.end(),
                   [&](uint32_t s) { return has_memory(workers_[s]); })) {
    std::ostringstream out;
    out << "no node has " << t.req.minimum_memory << " GB memory";
    return out.str();
  }
  for (int k = 0; k < max_accel_types; ++k) {
    if (t.need.accel[k] <= 0)
      continue;
    if (std::none_of(live_.begin(), live_.end(), [&](uint32_t s) {
          return workers_[s].total_accel[k] >= t.need.accel[k];
        }))
      return "no node has " + accel_names_[static_cast<size_t>(k)]
             + " >= " + std::to_string(t.need.accel[k]);
  }
  if (!t.cons.empty()) {
    // A requirement every worker fails is the reason; the first unmet one
    // of each worker tells which.
    std::string common;
    for (auto slot : live_) {
      auto why = first_unmet(*t.cons, workers_[slot].caps);
      if (why.empty()) {
        common.clear();
        break;
      }
      if (common.empty())
        common = why;
    }
    if (!common.empty()) {
      // Name a requirement that truly no worker meets, when there is one.
      node_constraints one;
      auto none_meets = [&](const node_constraints& c) {
        return std::none_of(live_.begin(), live_.end(), [&](uint32_t s) {
          return meets(c, workers_[s].caps);
        });
      };
      if (!t.cons->backend.empty()) {
        one = {};
        one.backend = t.cons->backend;
        if (none_meets(one))
          return "no node has backend " + t.cons->backend;
      }
      for (auto& n : t.cons->software) {
        one = {};
        one.software.push_back(n);
        if (none_meets(one))
          return "no node has software " + to_string(n);
      }
      for (auto& tag : t.cons->tags) {
        one = {};
        one.tags.push_back(tag);
        if (none_meets(one))
          return "no node has tag " + tag;
      }
      return "no node meets all of its requirements at once";
    }
  }
  for (auto slot : live_) {
    auto& w = workers_[slot];
    if (!has_memory(w))
      continue;
    bool acc_ok = true;
    for (int k = 0; k < max_accel_types; ++k)
      acc_ok = acc_ok && w.total_accel[k] >= t.need.accel[k];
    if (acc_ok && (t.cons.empty() || meets(*t.cons, w.caps)))
      return {};
  }
  return "no node meets all of its requirements at once";
}

std::string cluster_state::describe_need(const test_record& t) const {
  std::ostringstream out;
  out << "no worker can hold it (needs " << t.req.minimum_memory
      << " GB memory";
  for (auto& [name, count] : t.req.required_accelerators)
    if (count > 0)
      out << ", " << name << ":" << count;
  if (!t.req.required_backend.empty())
    out << ", backend " << t.req.required_backend;
  for (auto& sw : t.cons->software)
    out << ", software " << to_string(sw);
  for (auto& tag : t.cons->tags)
    out << ", tag " << tag;
  out << ")";
  return out.str();
}

void cluster_state::note_fit_lost(const worker_slot& w, double now) {
  auto could_hold = [&](const test_record& t) {
    if (w.total_memory < t.need.memory)
      return false;
    for (int k = 0; k < max_accel_types; ++k)
      if (w.total_accel[k] < t.need.accel[k])
        return false;
    return t.cons.empty() || meets(*t.cons, w.caps);
  };
  auto note = [&](auto& lists, bool test_record::*flag) {
    for (auto& dq : lists)
      for (auto h : dq) {
        auto& t = tests_[h.ref];
        if (t.live && t.gen == h.gen && t.*flag && could_hold(t))
          t.fit_lost_at = now;
      }
  };
  for (auto& band : queue_)
    note(band, &test_record::queued);
  note(parked_, &test_record::parked);
}

bool cluster_state::expire_unplaceable(uint32_t ref, double now) {
  auto& t = tests_[ref];
  auto limit = t.req.wait_limit > 0 ? t.req.wait_limit : cfg_.wait_limit;
  // The wait for a worker that can hold it: since its submission, or since
  // the last such worker left.
  auto since = std::max(t.submitted_at, t.fit_lost_at);
  // Only a test that no registered worker could hold even when idle runs
  // out of patience; one that waits for a busy cluster keeps waiting, as a
  // queue should.
  if (now - since < limit || could_ever_fit(t))
    return false;
  attempt_outcome o;
  o.success = false;
  o.error = describe_need(t) + ": " + unmet_reason(t) + "; waited "
            + std::to_string(static_cast<long long>(now - since)) + " s";
  end(ref, test_status::failed, &o, failure_kind::unplaceable, now);
  return true;
}

void cluster_state::tick(double now) {
  for (auto& dq : parked_) {
    for (size_t i = 0, n = dq.size(); i < n; ++i) {
      auto h = dq.front();
      dq.pop_front();
      auto& t = tests_[h.ref];
      if (!t.live || t.gen != h.gen || !t.parked)
        continue;
      if (expire_unplaceable(h.ref, now))
        continue;
      dq.push_back(h);
    }
  }
  // With no worker at all nothing leaves the queue to be parked (dispatch
  // stops when no slot is free): the queued tests wait for a node that can
  // hold them and end when their wait limit passes. Their queue entries go
  // stale and are dropped when the queue is next popped.
  if (live_.empty())
    for (auto& band : queue_)
      for (auto& dq : band)
        for (auto h : dq) {
          auto& t = tests_[h.ref];
          if (t.live && t.gen == h.gen && t.queued)
            expire_unplaceable(h.ref, now);
        }
  capacity_changed_ = true;
  if (now >= next_rebalance_)
    rebalance(now);
  speculate(now);
}

// -- rebalancing -------------------------------------------------------------

int cluster_state::queued_on(uint32_t slot) const {
  auto& w = workers_[slot];
  return std::max(0, static_cast<int>(w.held.size()) - w.slots - w.revoking);
}

void cluster_state::set_revocable(uint32_t slot, bool yes) {
  if (slot >= workers_.size() || !workers_[slot].alive)
    return;
  workers_[slot].revocable = yes;
  update_candidates(slot, load_of(slot));
}

void cluster_state::drop_candidate(std::vector<uint32_t>& set,
                                   uint32_t worker_slot::*pos, uint32_t slot) {
  auto i = workers_[slot].*pos;
  if (i == npos)
    return;
  set[i] = set.back();
  workers_[set[i]].*pos = i;
  set.pop_back();
  workers_[slot].*pos = npos;
}

// Keeps the candidate sets current in O(1) on every load change, so a cycle
// never has to find over- and underloaded workers by scanning all of them.
void cluster_state::update_candidates(uint32_t slot, float load) {
  if (!cfg_.rebalance)
    return;
  auto& w = workers_[slot];
  bool over = w.alive && w.revocable && load > cfg_.overload_threshold
              && queued_on(slot) > 0;
  bool idle = w.alive && load < cfg_.idle_threshold;
  if (over && w.over_pos == npos) {
    w.over_pos = static_cast<uint32_t>(over_.size());
    over_.push_back(slot);
  } else if (!over) {
    drop_candidate(over_, &worker_slot::over_pos, slot);
  }
  if (idle && w.idle_pos == npos) {
    w.idle_pos = static_cast<uint32_t>(idle_.size());
    idle_.push_back(slot);
  } else if (!idle) {
    drop_candidate(idle_, &worker_slot::idle_pos, slot);
  }
}

// A worker that just received a moved test gives none away during the
// cool-down (and one that gave takes none, see `can_take`): a test never
// bounces straight back.
bool cluster_state::can_give(uint32_t slot, double now) const {
  auto& w = workers_[slot];
  // Placements still in the outbox have not reached the worker: it could
  // not give them back, and its queue is about to change anyway.
  return w.alive && w.revocable
         && now - w.received_at >= cfg_.rebalance_cooldown
         && outbox_[slot].empty() && queued_on(slot) > 0
         && load_of(slot) > cfg_.overload_threshold;
}

bool cluster_state::can_take(uint32_t slot, double now) const {
  auto& w = workers_[slot];
  // Only as many as it can start at once: a moved test that queued again
  // would gain nothing.
  return w.alive && now - w.gave_at >= cfg_.rebalance_cooldown
         && load_of(slot) < cfg_.idle_threshold
         && static_cast<int>(w.held.size()) + w.incoming < w.slots;
}

// Returns the not-started tests of `source` that fit `target` (any target
// when npos), latest placement first: the worker runs its local queue in
// order, so the latest placements are the ones still waiting. The result
// is in `scratch_`; the first entry is the preferred victim.
uint32_t cluster_state::pick_victim(uint32_t source, uint32_t target) {
  auto& w = workers_[source];
  auto waiting = static_cast<size_t>(queued_on(source));
  scratch_.clear();
  for (auto& h : w.held) {
    auto& t = tests_[h.ref];
    // A test the worker reported started (or refused to give back) stays.
    // Nor does a speculated test or its copy move.
    if (t.status == test_status::assigned && !t.revoking && t.copy_of == npos
        && t.copy == npos)
      scratch_.push_back(h.ref);
  }
  auto later = [this](uint32_t a, uint32_t b) {
    return tests_[a].placed_seq > tests_[b].placed_seq;
  };
  auto n = std::min(waiting, scratch_.size());
  std::partial_sort(scratch_.begin(), scratch_.begin() + n, scratch_.end(),
                    later);
  for (size_t i = 0; i < n; ++i)
    if (target == npos || fits_now(target, tests_[scratch_[i]]))
      return scratch_[i];
  return npos;
}

uint32_t cluster_state::pick_target(const test_record& t, uint32_t source,
                                    double now) {
  auto n = std::min(idle_.size(), rebalance_sample);
  uint32_t best = npos;
  float best_load = 0;
  for (size_t i = 0; i < n; ++i) {
    auto slot = idle_[(idle_cursor_ + i) % idle_.size()];
    if (slot == source || !can_take(slot, now) || !fits_now(slot, t))
      continue;
    auto load = load_of(slot)
                + static_cast<float>(workers_[slot].incoming)
                    / static_cast<float>(workers_[slot].capacity);
    if (best == npos || load < best_load
        || (load == best_load && slot < best)) {
      best = slot;
      best_load = load;
    }
  }
  // Rotate so a large idle set is sampled evenly over the cycles.
  if (!idle_.empty())
    idle_cursor_ = (idle_cursor_ + n) % idle_.size();
  return best;
}

void cluster_state::start_move(uint32_t ref, uint32_t source, uint32_t target,
                               bool steal, double now) {
  auto& t = tests_[ref];
  auto& src = workers_[source];
  auto& dst = workers_[target];
  t.revoking = true;
  t.stealing = steal;
  t.move_to = target;
  t.move_to_serial = dst.serial;
  ++src.revoking;
  ++dst.incoming;
  src.gave_at = now;
  dst.received_at = now;
  --moves_left_;
  ++moves_in_flight_;
  auto& box = revoke_box_[source];
  if (box.empty())
    revoke_dirty_.push_back(source);
  box.push_back(test_handle{ref, t.gen});
  update_candidates(source, load_of(source));
}

void cluster_state::end_move(test_record& t) {
  if (!t.revoking)
    return;
  t.revoking = false;
  --moves_in_flight_;
  if (t.worker != npos && t.worker < workers_.size()) {
    --workers_[t.worker].revoking;
    if (workers_[t.worker].alive)
      update_candidates(t.worker, load_of(t.worker));
  }
  if (t.move_to < workers_.size()) {
    auto& dst = workers_[t.move_to];
    if (dst.alive && dst.serial == t.move_to_serial)
      --dst.incoming;
  }
  t.move_to = npos;
  t.move_to_serial = npos;
}

// Busiest first, from a bounded sample of the overloaded candidates.
static void sort_by_load_desc(std::vector<std::pair<float, uint32_t>>& xs) {
  std::sort(xs.begin(), xs.end(), [](auto& a, auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  });
}

void cluster_state::rebalance(double now) {
  next_rebalance_ = now + cfg_.rebalance_interval;
  moves_left_ = cfg_.max_moves_per_cycle;
  if (!cfg_.rebalance || over_.empty() || idle_.empty())
    return;
  auto n = std::min(over_.size(), rebalance_sample);
  std::vector<std::pair<float, uint32_t>> sources;
  sources.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    auto slot = over_[(over_cursor_ + i) % over_.size()];
    sources.emplace_back(load_of(slot), slot);
  }
  over_cursor_ = (over_cursor_ + n) % over_.size();
  sort_by_load_desc(sources);
  for (auto& [load, src] : sources) {
    while (moves_left_ > 0 && can_give(src, now)) {
      // Latest placement first; the first one some idle worker fits moves.
      pick_victim(src, npos);
      auto victims = scratch_;
      auto waiting
        = std::min(victims.size(), static_cast<size_t>(queued_on(src)));
      bool moved = false;
      for (size_t i = 0; i < waiting && !moved; ++i) {
        auto dst = pick_target(tests_[victims[i]], src, now);
        if (dst != npos) {
          start_move(victims[i], src, dst, false, now);
          moved = true;
        }
      }
      if (!moved)
        break;
    }
    if (moves_left_ <= 0)
      break;
  }
}

void cluster_state::steal(uint32_t slot, double now) {
  if (!cfg_.rebalance || moves_left_ <= 0 || over_.empty()
      || slot >= workers_.size() || !can_take(slot, now) || queued() > 0)
    return;
  auto n = std::min(over_.size(), rebalance_sample);
  std::vector<std::pair<float, uint32_t>> sources;
  sources.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    auto s = over_[(over_cursor_ + i) % over_.size()];
    if (s != slot)
      sources.emplace_back(load_of(s), s);
  }
  over_cursor_ = (over_cursor_ + n) % over_.size();
  sort_by_load_desc(sources);
  for (auto& [load, src] : sources) {
    while (moves_left_ > 0 && can_take(slot, now) && can_give(src, now)) {
      auto victim = pick_victim(src, slot);
      if (victim == npos)
        break;
      start_move(victim, src, slot, true, now);
    }
    if (moves_left_ <= 0 || !can_take(slot, now))
      break;
  }
}

bool cluster_state::revoked(uint32_t slot, test_handle h, bool given_back,
                            double now) {
  if (h.ref >= tests_.size())
    return false;
  auto& t = tests_[h.ref];
  if (!t.live || t.gen != h.gen || t.worker != slot || !t.revoking)
    return false;
  if (!given_back) {
    // The worker started it before the revoke arrived: it stays, and it
    // is known to be running (its start time comes with its report).
    end_move(t);
    t.status = test_status::running;
    return false;
  }
  auto target = t.move_to;
  auto serial = t.move_to_serial;
  auto steal = t.stealing;
  release(h.ref);
  // Counted per test too, so each outcome says how it moved.
  ++(steal ? t.stolen : t.migrated);
  if (steal) {
    stats_.stolen();
    if (obs_)
      obs_->on_stolen();
  } else {
    stats_.migrated();
    if (obs_)
      obs_->on_migrated();
  }
  auto& key = t.req.concurrency_key;
  if (target < workers_.size() && workers_[target].alive
      && workers_[target].serial == serial && fits_now(target, t)
      && static_cast<int>(workers_[target].held.size())
           < workers_[target].capacity) {
    // The key stays taken: the test holds it on its new worker.
    if (!key.empty())
      --key_busy_[key];
    place_reserve(h.ref, target, now);
    return true;
  }
  // The target filled up or left meanwhile: the test is free again and
  // waits at the front of the queue for the next dispatch.
  if (!key.empty())
    release_key(key, now);
  enqueue(h.ref, now, true);
  return true;
}

assignment cluster_state::view(const test_record& t) const {
  assignment a;
  a.test_id = t.req.test_id;
  if (t.last_serial != npos)
    a.worker_id = stats_.workers()[t.last_serial].worker_id;
  a.submitted_at = t.submitted_at;
  a.assigned_at = t.assigned_at;
  a.started_at = t.started_at;
  a.status = t.status;
  a.attempts = t.attempts;
  a.migrated = t.migrated;
  a.stolen = t.stolen;
  a.speculated = t.speculated;
  a.speculation_won = t.copy_won;
  return a;
}

std::vector<assignment> cluster_state::assignments() const {
  std::vector<assignment> result;
  for (auto& t : tests_)
    if (t.live && t.copy_of == npos)
      result.push_back(view(t));
  return result;
}

cluster_snapshot cluster_state::snapshot(double now) const {
  cluster_snapshot s;
  s.now = now;
  for (size_t p = 0; p < 5; ++p) {
    s.queued_by_priority[p] = queued_count_[p];
    s.parked_by_priority[p] = parked_by_prio_[p];
    s.key_waiting_by_priority[p] = key_waiting_by_prio_[p];
  }
  s.parked = parked_count_;
  s.workers = live_.size();
  s.assigned = in_flight_;
  double load = 0;
  for (auto slot : live_) {
    if (!workers_[slot].held.empty())
      ++s.busy_workers;
    load += load_of(slot);
  }
  s.mean_load = live_.empty() ? 0 : load / static_cast<double>(live_.size());
  return s;
}

std::string cluster_state::check_invariants() const {
  std::ostringstream err;
  size_t held_total = 0;
  for (auto slot : live_) {
    auto& w = workers_[slot];
    double mem = 0;
    accel_counts acc{};
    for (size_t i = 0; i < w.held.size(); ++i) {
      auto& t = tests_[w.held[i].ref];
      if (!t.live || t.worker != slot)
        err << "worker " << w.caps.worker_id << " holds a test it does not own"
            << "; ";
      if (t.held_at != i)
        err << "test " << t.req.test_id << " is at " << i << " of worker "
            << w.caps.worker_id << "'s held tests, not at its index "
            << t.held_at << "; ";
      mem += t.need.memory;
      for (int k = 0; k < max_accel_types; ++k)
        acc[k] = static_cast<int16_t>(acc[k] + t.need.accel[k]);
    }
    held_total += w.held.size();
    if (mem > w.total_memory + eps)
      err << "worker " << w.caps.worker_id << " oversubscribed on memory ("
          << mem << " > " << w.total_memory << "); ";
    if (std::fabs((w.total_memory - w.free_memory) - mem) > 1e-2)
      err << "worker " << w.caps.worker_id << " reservation drift; ";
    for (int k = 0; k < max_accel_types; ++k) {
      if (acc[k] > w.total_accel[k])
        err << "worker " << w.caps.worker_id
            << " oversubscribed on accelerators; ";
      if (w.total_accel[k] - w.free_accel[k] != acc[k])
        err << "worker " << w.caps.worker_id << " accelerator drift; ";
    }
    if (static_cast<int>(w.held.size()) > w.capacity)
      err << "worker " << w.caps.worker_id << " holds more than its capacity; ";
  }
  // Moves in flight: each revoking test is counted once at its source and
  // once at its target.
  std::vector<int> incoming(workers_.size(), 0);
  size_t revoking_total = 0;
  for (auto& t : tests_) {
    if (!t.live || !t.revoking)
      continue;
    ++revoking_total;
    if (t.worker == npos)
      err << "test " << t.req.test_id << " is being moved but held by none; ";
    if (t.move_to < workers_.size() && workers_[t.move_to].alive
        && workers_[t.move_to].serial == t.move_to_serial)
      ++incoming[t.move_to];
  }
  if (revoking_total != moves_in_flight_)
    err << "moves in flight " << moves_in_flight_ << " != revoking tests "
        << revoking_total << "; ";
  for (auto slot : live_) {
    auto& w = workers_[slot];
    int revoking = 0;
    for (auto& h : w.held)
      revoking += tests_[h.ref].revoking ? 1 : 0;
    if (revoking != w.revoking)
      err << "worker " << w.caps.worker_id << " revoking count drift; ";
    if (incoming[slot] != w.incoming)
      err << "worker " << w.caps.worker_id << " incoming count drift; ";
  }
  if (held_total != in_flight_)
    err << "in-flight count " << in_flight_ << " != held " << held_total
        << "; ";
  size_t live_tests = 0;
  // The waiting counts by priority feed alb_queue_depth{priority,state}.
  std::array<size_t, 5> parked{};
  std::array<size_t, 5> key_waiting{};
  // Queued tests per size class that need an accelerator feed adaptive's
  // deferral (`queued_at_least(k, true)`).
  std::array<uint32_t, size_classes> accel_queued{};
  for (auto& t : tests_) {
    live_tests += t.live && t.copy_of == npos ? 1 : 0;
    if (t.live && t.queued && accel_mask(t.need) != 0)
      ++accel_queued[t.size_class];
    auto p = static_cast<size_t>(t.req.priority - 1);
    if (t.live && t.parked)
      ++parked[p];
    if (t.live && t.key_waiting)
      ++key_waiting[p];
  }
  if (parked != parked_by_prio_ || key_waiting != key_waiting_by_prio_)
    err << "parked or key-waiting counts by priority drift; ";
  if (accel_queued != accel_class_count_)
    err << "queued accelerator tests per size class drift; ";
  // Every copy belongs to a live original that points back at it, and is
  // placed.
  size_t copies = 0;
  for (uint32_t i = 0; i < tests_.size(); ++i) {
    auto& t = tests_[i];
    if (!t.live || t.copy_of == npos)
      continue;
    ++copies;
    if (t.copy_of >= tests_.size() || !tests_[t.copy_of].live
        || tests_[t.copy_of].copy != i || t.worker == npos)
      err << "copy of test " << t.req.test_id << " is orphaned; ";
  }
  if (copies != copies_)
    err << "copy count " << copies_ << " != live copies " << copies << "; ";
  if (live_tests != open_)
    err << "open count " << open_ << " != live records " << live_tests << "; ";
  if (stats_.submitted_count() != stats_.ended() + open_)
    err << "submitted " << stats_.submitted_count() << " != ended "
        << stats_.ended() << " + open " << open_ << "; ";
  return err.str();
}

} // namespace alb
