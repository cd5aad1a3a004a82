#include "actors/worker.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/executor.hpp"
#include "runtime/local_queue.hpp"
#include "runtime/rng.hpp"
#include "runtime/simulation.hpp"

namespace alb {

namespace {

using std::chrono::duration;
using std::chrono::duration_cast;

caf::timespan span(double seconds) {
  // Beyond ~292 years a timespan (int64 nanoseconds) overflows and the
  // timer would fire at once: clamp far below that (files are checked at
  // load; this guards other senders).
  return duration_cast<caf::timespan>(
    duration<double>(std::clamp(seconds, 0.0, 1e9)));
}

// -- the one worker actor -----------------------------------------------------

/// A run's deadline passed (worker-internal).
using deadline_atom = caf::atom_constant<caf::atom("deadline")>;
/// A run's process ended (worker-internal, from the reaper's thread).
using exited_atom = caf::atom_constant<caf::atom("exited")>;

/// The worker's own interface: the public one plus its private timers.
using worker_self_actor
  = revocable_worker_actor::extend<caf::reacts_to<deadline_atom, uint64_t>,
                                   caf::reacts_to<exited_atom, uint64_t>>;

struct worker_state;
using worker_impl = worker_self_actor::stateful_pointer<worker_state>;

/// The executor's view of its worker.
class host_of final : public executor_host {
public:
  explicit host_of(worker_impl self) : self_(self) {
    // nop
  }
  double now() const override;
  void timer(double seconds, uint64_t seq) override;
  void deadline(double seconds, uint64_t seq) override;
  std::function<void()> exit_notifier(uint64_t seq) override;

private:
  worker_impl self_;
};

using queue_type = local_queue<work_item, work_report>;

/// One worker's placements and what it owes the scheduler: all of a worker
/// but how it joins and whom it reports to, so one actor hosts one worker
/// (the worker actor) or many (the pool, see `spawn_worker_pool`).
struct worker_unit {
  /// What runs its tests.
  std::shared_ptr<executor> exec;
  /// Its placements and unsent reports.
  queue_type queue;
  /// Placements with a timeout started since the last report (sent only
  /// to a coordinator, which enforces their timeout too).
  std::vector<placement_ref> started_out;
  /// Its slot in the scheduler (once joined).
  uint32_t slot = 0;
  /// External load last sent (the scheduler starts every worker at 0).
  float load_sent = 0;
  /// When the executor's load was last looked at (`host.now()`).
  double load_looked_at = 0;

  /// Stops whatever still runs (the unit's actor ends).
  void stop_all() {
    if (exec)
      for (auto seq : queue.running_seqs())
        exec->stop(seq);
  }
};

/// What the unit functions below read of the actor hosting the unit.
struct unit_env {
  /// The executors' view of the hosting actor.
  executor_host& host;
  /// Least real seconds between two looks at an executor's load.
  double report_interval;
  /// Simulated seconds per real second.
  double time_scale;
  /// Whether starts are reported (workers of a coordinator).
  bool report_starts;
};

// The load beyond the worker's own tests when it changed by a point or more
// since it was last sent, else -1. Looked at no more often than
// `report_interval`: a busy worker reports many times a second.
float changed_load(worker_unit& u, const unit_env& env) {
  if (!u.exec->reports_load())
    return -1;
  auto now = env.host.now();
  if (now - u.load_looked_at < env.report_interval)
    return -1;
  u.load_looked_at = now;
  worker_load l;
  l.active_tests = static_cast<int>(u.queue.running());
  l.queued_tests = static_cast<int>(u.queue.queued());
  l.queue_depth = l.active_tests + l.queued_tests;
  auto own = static_cast<double>(l.active_tests) / std::max(1, u.queue.slots());
  l.cpu_utilization = std::min(100.0, 100.0 * own);
  u.exec->fill_load(env.host, l);
  auto ext = static_cast<float>(
    std::clamp(l.cpu_utilization / 100.0 - std::min(1.0, own), 0.0, 1.0));
  if (std::abs(ext - u.load_sent) < 0.01f)
    return -1;
  u.load_sent = ext;
  return ext;
}

// What ended (and started) since the last report, with the load when it
// changed; nothing when nothing did: an idle worker is silent.
std::optional<report_batch> take_report(worker_unit& u, const unit_env& env) {
  auto out = u.queue.flush();
  if (out.empty() && u.started_out.empty())
    return std::nullopt;
  report_batch b;
  b.external_load = changed_load(u, env);
  b.slot = u.slot;
  b.items = std::move(out);
  b.started = std::move(u.started_out);
  u.started_out.clear();
  return b;
}

void ended(worker_unit& u, const queue_type::started& s, work_report& r) {
  r.ref = s.item.ref;
  r.gen = s.item.gen;
  r.queued_seconds = s.queued_seconds;
  u.queue.report(std::move(r));
}

void start_more(worker_unit& u, const unit_env& env) {
  if (!u.queue.can_start())
    return;
  u.queue.start_ready(
    env.host.now() * env.time_scale, [&](uint64_t seq, queue_type::started& s) {
      work_report r;
      if (u.exec->start(env.host, seq, s.item, r)) {
        // Only a coordinator counts a deadline from the start; a local
        // scheduler trusts its workers.
        if (env.report_starts && s.item.timeout > 0)
          u.started_out.push_back(placement_ref{s.item.ref, s.item.gen});
        return true;
      }
      ended(u, s, r);
      return false;
    });
}

// Takes placements and starts what fits.
void take_work(worker_unit& u, const unit_env& env, work_batch& b) {
  auto now = env.host.now() * env.time_scale;
  for (auto& item : b.items)
    u.queue.push(std::move(item), now);
  start_more(u, env);
}

// One event of run `seq` (timer, deadline or exit) through `call`; true
// when the run ended (a report is due).
template<class Call>
bool on_run_event(worker_unit& u, const unit_env& env, uint64_t seq,
                  Call call) {
  auto* s = u.queue.find_running(seq);
  // Cancelled meanwhile: its events mean nothing now.
  if (!s)
    return false;
  work_report r;
  if (!call(*s, r))
    return false;
  auto done = u.queue.finish(seq);
  ended(u, *done, r);
  start_more(u, env);
  return true;
}

// Withdraws (ref, gen) without a report either way; true when the unit
// held it.
bool withdraw(worker_unit& u, const unit_env& env, uint32_t ref, uint32_t gen) {
  uint64_t seq = 0;
  auto found = u.queue.cancel(ref, gen, &seq);
  if (found == cancel_found::running) {
    u.exec->stop(seq);
    start_more(u, env);
  }
  return found != cancel_found::nothing;
}

// Gives back what still waits of the revoked placements; a started one
// stays, so no test ever runs twice.
revoke_reply answer_revokes(worker_unit& u, const revoke_batch& b) {
  revoke_reply reply;
  reply.slot = u.slot;
  reply.items.reserve(b.items.size());
  for (auto& r : b.items)
    reply.items.push_back(
      revoke_answer{r.ref, r.gen, u.queue.revoke(r.ref, r.gen)});
  return reply;
}

struct worker_state {
  static inline const char* name = "alb.worker";

  /// What it keeps of its options (the rest goes with the join).
  struct kept_options {
    coordinator_actor coordinator;
    node_uplink_actor uplink;
    double report_interval = 1;
    double time_scale = 1;
    bool quit_with_error = true;
  } opts;
  /// Its options until the join is answered (capabilities, token, node,
  /// callback), then freed: the scheduler holds the capabilities, and a
  /// large pool should not hold them twice.
  std::unique_ptr<worker_core_options> joining;
  scheduler_actor scheduler;
  /// What the executor sees of this worker (inline: one heap block less
  /// per worker).
  std::optional<host_of> host;
  caf::actor_clock::time_point start;
  /// The worker itself.
  worker_unit unit;

  ~worker_state() {
    // Whatever still runs stops with the worker.
    unit.stop_all();
  }
};

double host_of::now() const {
  duration<double> d = self_->clock().now() - self_->state.start;
  return d.count();
}

void host_of::timer(double seconds, uint64_t seq) {
  self_->delayed_send(self_, span(seconds), finish_atom::value, seq);
}

void host_of::deadline(double seconds, uint64_t seq) {
  self_->delayed_send(self_, span(seconds), deadline_atom::value, seq);
}

std::function<void()> host_of::exit_notifier(uint64_t seq) {
  // A weak address: a notifier outliving the worker does nothing.
  return [addr = self_->address(), seq] {
    if (auto a = caf::actor_cast<caf::actor>(addr))
      caf::anon_send(a, exited_atom::value, seq);
  };
}

unit_env env_of(worker_impl self) {
  auto& st = self->state;
  return unit_env{*st.host, st.opts.report_interval, st.opts.time_scale,
                  static_cast<bool>(st.opts.coordinator)};
}

// Sends the worker's report, if one is due.
void flush(worker_impl self) {
  auto& st = self->state;
  auto b = take_report(st.unit, env_of(self));
  if (!b)
    return;
  // Through the uplink when there is one: gathered with the node's other
  // workers' reports.
  if (st.opts.uplink)
    self->send(st.opts.uplink, std::move(*b));
  else
    self->send(st.scheduler, std::move(*b));
}

// One event of run `seq` through `call`, then the report.
template<class Call>
void on_run_event(worker_impl self, uint64_t seq, Call call) {
  if (on_run_event(self->state.unit, env_of(self), seq, call))
    flush(self);
}

void on_joined(worker_impl self, uint32_t slot) {
  auto& st = self->state;
  st.unit.slot = slot;
  st.unit.queue.set_joined();
  // This worker gives back queued tests on request: rebalancing may move
  // them. (Through a coordinator, the coordinator says so for it.)
  if (!st.opts.coordinator)
    self->send(st.scheduler, revoke_atom::value, slot);
  auto joining = std::move(st.joining);
  if (joining && joining->on_joined)
    joining->on_joined(slot);
  flush(self);
}

void end_with(worker_impl self, caf::error e) {
  if (self->state.opts.quit_with_error)
    self->quit(std::move(e));
  else
    self->quit();
}

worker_self_actor::behavior_type
worker_behavior(worker_impl self, scheduler_actor scheduler,
                worker_core_options opts, std::shared_ptr<executor> exec) {
  auto& st = self->state;
  st.opts.coordinator = opts.coordinator;
  st.opts.uplink = opts.uplink;
  st.opts.report_interval = opts.report_interval;
  st.opts.time_scale = opts.time_scale;
  st.opts.quit_with_error = opts.quit_with_error;
  st.joining = std::make_unique<worker_core_options>(std::move(opts));
  auto& caps = st.joining->caps;
  st.scheduler = scheduler;
  st.unit.exec = std::move(exec);
  st.host.emplace(self);
  st.start = self->clock().now();
  st.unit.queue.set_slots(caps.max_concurrent_tests > 0
                            ? caps.max_concurrent_tests
                            : std::max(1, caps.cpu_cores));
  // Losing the scheduler (or the coordinator, hence the connection) ends
  // the worker: there is nobody to report to.
  self->set_down_handler(
    [self](caf::down_msg& dm) { end_with(self, std::move(dm.reason)); });
  auto me = caf::actor_cast<worker_actor>(self);
  if (st.opts.coordinator) {
    self->monitor(st.opts.coordinator);
    if (st.opts.uplink) {
      // Announced before the join request leaves: the uplink knows this
      // worker before any placement for it can arrive there.
      self->monitor(st.opts.uplink);
      self->send(st.opts.uplink, join_atom::value);
    }
    auto& jo = *st.joining;
    node_join j{std::move(jo.token), std::move(jo.node), std::move(caps),
                st.opts.uplink};
    self
      ->request(st.opts.coordinator, caf::infinite, join_atom::value,
                std::move(j), me)
      .then(
        [self](uint32_t slot, scheduler_actor& sched) {
          self->state.scheduler = sched;
          self->monitor(sched);
          if (self->state.opts.uplink)
            self->send(self->state.opts.uplink, join_atom::value, sched);
          on_joined(self, slot);
        },
        [self](caf::error& e) { end_with(self, std::move(e)); });
  } else {
    self->monitor(scheduler);
    self
      ->request(scheduler, caf::infinite, join_atom::value, std::move(caps), me)
      .then([self](uint32_t slot) { on_joined(self, slot); },
            [self](caf::error& e) { end_with(self, std::move(e)); });
  }
  return {
    [self](work_batch& b) {
      take_work(self->state.unit, env_of(self), b);
      flush(self);
    },
    [self](cancel_atom, uint32_t ref, uint32_t gen) {
      // The scheduler withdrew it: no report either way.
      if (withdraw(self->state.unit, env_of(self), ref, gen))
        flush(self);
    },
    [self](finish_atom, uint64_t seq) {
      on_run_event(self, seq, [&](queue_type::started& s, work_report& r) {
        return self->state.unit.exec->on_timer(*self->state.host, seq, s.item,
                                               r);
      });
    },
    [self](deadline_atom, uint64_t seq) {
      on_run_event(self, seq, [&](queue_type::started& s, work_report& r) {
        return self->state.unit.exec->on_deadline(*self->state.host, seq,
                                                  s.item, r);
      });
    },
    [self](exited_atom, uint64_t seq) {
      on_run_event(self, seq, [&](queue_type::started& s, work_report& r) {
        return self->state.unit.exec->on_exit(*self->state.host, seq, s.item,
                                              r);
      });
    },
    [](tick_atom) {
      // nop: no periodic work (see `changed_load`)
    },
    [self](status_atom) {
      auto& q = self->state.unit.queue;
      return static_cast<uint32_t>(q.running() + q.queued());
    },
    [self](revoke_batch& b) {
      auto& st = self->state;
      self->send(st.scheduler, answer_revokes(st.unit, b));
    },
    [self](leave_atom) {
      auto& st = self->state;
      // Through the uplink when there is one, so the leave follows the
      // reports it still holds.
      if (st.unit.queue.joined() && st.opts.uplink)
        self->send(st.opts.uplink, leave_atom::value, st.unit.slot);
      else if (st.unit.queue.joined())
        self->send(st.scheduler, leave_atom::value, st.unit.slot);
      self->quit();
    },
  };
}

// -- the simulation -----------------------------------------------------------

/// Runs tests as simulated durations drawn from a profile.
class simulation_executor final : public executor {
public:
  explicit simulation_executor(const worker_options& o)
    : failure_rate_(o.profile.failure_rate),
      warmup_seconds_(o.profile.warmup_seconds),
      warmup_performance_(o.profile.warmup_performance),
      background_load_(o.profile.background_load), speed_(o.caps.speed),
      time_scale_(o.time_scale), jitter_seed_(o.jitter_seed),
      on_start_(o.on_start) {
    random_.reseed(o.seed);
  }

  bool start(executor_host& host, uint64_t seq, const work_item& item,
             work_report& done) override {
    if (on_start_)
      (*on_start_)(item.test_id);
    auto jitter
      = jitter_seed_ != 0 ? simulated_jitter(item.test_id, jitter_seed_) : 0.0;
    auto a = simulate_attempt(item.expected_duration, speed_, performance(host),
                              failure_rate_, item.timeout, random_, jitter);
    auto real = a.duration / time_scale_;
    // Zero-length tests end on the spot, which keeps zero-duration
    // benchmarks free of timer traffic.
    if (real <= 0) {
      fill(item, a, done);
      return false;
    }
    attempts_.emplace_back(seq, a);
    host.timer(real, seq);
    return true;
  }

  bool on_timer(executor_host&, uint64_t seq, const work_item& item,
                work_report& done) override {
    auto i = find(seq);
    if (i == attempts_.end())
      return false;
    fill(item, i->second, done);
    attempts_.erase(i);
    return true;
  }

  bool on_deadline(executor_host&, uint64_t, const work_item&,
                   work_report&) override {
    // Timeouts are part of the drawn attempt.
    return false;
  }

  bool on_exit(executor_host&, uint64_t, const work_item&,
               work_report&) override {
    return false;
  }

  void stop(uint64_t seq) override {
    // The timer still fires; finding nothing, it is ignored.
    if (auto i = find(seq); i != attempts_.end())
      attempts_.erase(i);
  }

  void fill_load(executor_host& host, worker_load& l) override {
    auto bg = background_load_;
    if (bg > 0) {
      // Background load drifts as a bounded random walk, one step each time
      // the worker looks (at most once per report interval, as it reports).
      background_
        = std::clamp(background_ + random_.uniform(-0.2, 0.2) * bg, 0.0, bg);
    }
    l.cpu_utilization = std::min(100.0, l.cpu_utilization + background_);
    l.performance_level = performance(host);
    l.warming_up = l.performance_level < 1.0;
  }

  bool reports_load() const override {
    // Only background load is news to the scheduler: warm-up slows the
    // drawn durations, which the reports' times carry.
    return background_load_ > 0;
  }

private:
  double performance(executor_host& host) const {
    return warmup_level(warmup_seconds_, warmup_performance_,
                        host.now() * time_scale_);
  }

  // At most the worker's slots run at once: a scan beats a hash table's
  // 56 bytes per idle worker.
  std::vector<std::pair<uint64_t, simulated_attempt>>::iterator
  find(uint64_t seq) {
    return std::find_if(attempts_.begin(), attempts_.end(),
                        [seq](auto& a) { return a.first == seq; });
  }

  static void fill(const work_item& item, const simulated_attempt& a,
                   work_report& r) {
    r.success = a.success;
    r.timed_out = a.timed_out;
    r.exec_seconds = a.duration;
    if (a.timed_out)
      r.error = "timed out after " + std::to_string(item.timeout) + " s";
    else if (!a.success)
      r.error = "simulated failure";
  }

  // The profile's figures an attempt reads (the distributions drew the
  // fleet and are not kept: a copy per worker was ~200 bytes).
  double failure_rate_;
  double warmup_seconds_;
  double warmup_performance_;
  double background_load_;
  double speed_;
  double time_scale_;
  uint64_t jitter_seed_;
  const std::function<void(const std::string&)>* on_start_;
  rng random_;
  double background_ = 0;
  std::vector<std::pair<uint64_t, simulated_attempt>> attempts_;
};

// -- the pool -----------------------------------------------------------------

/// Bits of a run's sequence number below its worker's index in the pool:
/// each worker numbers its runs from `index << unit_seq_bits`.
constexpr int unit_seq_bits = 40;

struct pool_state;
using pool_impl = revocable_worker_actor::stateful_pointer<pool_state>;

/// The executors' view of their pool: one clock, every timer to the pool.
class pool_host final : public executor_host {
public:
  explicit pool_host(pool_impl self) : self_(self) {
    // nop
  }
  double now() const override;
  void timer(double seconds, uint64_t seq) override;
  void deadline(double, uint64_t) override {
    // nop: a simulated attempt's timeout is part of its drawn duration
  }
  std::function<void()> exit_notifier(uint64_t) override {
    // A simulation starts no process.
    return {};
  }

private:
  pool_impl self_;
};

struct pool_state {
  static inline const char* name = "alb.worker_pool";

  scheduler_actor scheduler;
  std::optional<pool_host> host;
  caf::actor_clock::time_point start;
  double report_interval = 1;
  double time_scale = 1;
  /// The workers it hosts.
  std::vector<worker_unit> units;
  /// (slot, index in `units`) of every joined worker, sorted by slot.
  std::vector<std::pair<uint32_t, uint32_t>> by_slot;
  /// Each worker's join callback until its join is answered.
  std::vector<std::function<void(uint32_t)>> on_joined;
  /// The capabilities of the workers whose join is not sent yet (from
  /// `next_join` on); freed once all are sent.
  std::vector<worker_capabilities> to_join;
  /// The next worker to ask to join.
  uint32_t next_join = 0;
  /// Joins not answered yet.
  size_t unanswered = 0;
  /// Placements for a slot whose join answer has not arrived yet (the
  /// scheduler places on a worker as it joins, before it answers).
  std::vector<work_batch> early;

  ~pool_state() {
    for (auto& u : units)
      u.stop_all();
  }
};

double pool_host::now() const {
  duration<double> d = self_->clock().now() - self_->state.start;
  return d.count();
}

void pool_host::timer(double seconds, uint64_t seq) {
  self_->delayed_send(self_, span(seconds), finish_atom::value, seq);
}

unit_env env_of(pool_impl self) {
  auto& st = self->state;
  return unit_env{*st.host, st.report_interval, st.time_scale, false};
}

// The joined worker in `slot`, or null (a slot it never held, or a worker
// of it that left).
worker_unit* unit_in(pool_impl self, uint32_t slot) {
  auto& st = self->state;
  auto i = std::lower_bound(st.by_slot.begin(), st.by_slot.end(),
                            std::make_pair(slot, uint32_t{0}));
  if (i == st.by_slot.end() || i->first != slot)
    return nullptr;
  return &st.units[i->second];
}

// Sends the report of one worker, if one is due.
void flush(pool_impl self, worker_unit& u) {
  if (auto b = take_report(u, env_of(self)))
    self->send(self->state.scheduler, std::move(*b));
}

/// Join requests a pool has out at once: a fleet of 100,000 asking all at
/// once queues every worker's capabilities in the scheduler's mailbox, and
/// that memory stays resident after (~0.2 KiB per worker).
constexpr uint32_t joins_in_flight = 8;

void join_next(pool_impl self);

// A join was answered, either way.
void answered(pool_impl self) {
  auto& st = self->state;
  if (--st.unanswered == 0)
    std::vector<std::function<void(uint32_t)>>{}.swap(st.on_joined);
  join_next(self);
}

void joined(pool_impl self, uint32_t index, uint32_t slot) {
  auto& st = self->state;
  auto& u = st.units[index];
  u.slot = slot;
  u.queue.set_joined();
  auto at = std::lower_bound(st.by_slot.begin(), st.by_slot.end(),
                             std::make_pair(slot, index));
  st.by_slot.insert(at, {slot, index});
  self->send(st.scheduler, revoke_atom::value, slot);
  // What the scheduler placed before its answer arrived.
  for (auto i = st.early.begin(); i != st.early.end();) {
    if (i->slot == slot) {
      take_work(u, env_of(self), *i);
      i = st.early.erase(i);
    } else {
      ++i;
    }
  }
  auto call = std::move(st.on_joined[index]);
  answered(self);
  if (call)
    call(slot);
  flush(self, u);
}

// Asks the scheduler to admit the next worker, if any is left.
void join_next(pool_impl self) {
  auto& st = self->state;
  if (st.next_join >= st.to_join.size())
    return;
  auto i = st.next_join++;
  auto caps = std::move(st.to_join[i]);
  if (st.next_join == st.to_join.size())
    std::vector<worker_capabilities>{}.swap(st.to_join);
  self
    ->request(st.scheduler, caf::infinite, join_atom::value, std::move(caps),
              caf::actor_cast<worker_actor>(self))
    .then([self, i](uint32_t slot) { joined(self, i, slot); },
          [self, i](caf::error&) {
            // Refused: this worker never takes part, the others do.
            self->state.on_joined[i] = nullptr;
            answered(self);
          });
}

revocable_worker_actor::behavior_type
pool_behavior(pool_impl self, scheduler_actor scheduler,
              std::vector<worker_options> workers) {
  auto& st = self->state;
  st.scheduler = scheduler;
  st.host.emplace(self);
  st.start = self->clock().now();
  if (!workers.empty()) {
    st.time_scale = workers.front().time_scale;
    st.report_interval
      = workers.front().report_interval / workers.front().time_scale;
  }
  st.units.resize(workers.size());
  st.on_joined.resize(workers.size());
  st.unanswered = workers.size();
  st.by_slot.reserve(workers.size());
  // The pool's workers die with the scheduler they serve.
  self->monitor(scheduler);
  self->set_down_handler([self](caf::down_msg&) { self->quit(); });
  st.to_join.reserve(workers.size());
  for (uint32_t i = 0; i < workers.size(); ++i) {
    auto& wo = workers[i];
    auto& u = st.units[i];
    u.exec = std::make_shared<simulation_executor>(wo);
    u.queue.set_slots(wo.caps.max_concurrent_tests > 0
                        ? wo.caps.max_concurrent_tests
                        : std::max(1, wo.caps.cpu_cores));
    u.queue.set_first_seq(static_cast<uint64_t>(i) << unit_seq_bits);
    st.on_joined[i] = std::move(wo.on_joined);
    st.to_join.push_back(std::move(wo.caps));
  }
  for (uint32_t k = 0; k < joins_in_flight; ++k)
    join_next(self);
  return {
    [self](work_batch& b) {
      if (auto* u = unit_in(self, b.slot)) {
        take_work(*u, env_of(self), b);
        flush(self, *u);
      } else if (self->state.unanswered > 0) {
        self->state.early.push_back(std::move(b));
      }
    },
    [self](cancel_atom, uint32_t ref, uint32_t gen) {
      // A cancel names no slot: (ref, gen) is one placement, held by at
      // most one of the workers. Cancels are rare (speculation's losing
      // copies, overdue tests): a scan of the pool's queues.
      for (auto& u : self->state.units)
        if (u.queue.joined() && withdraw(u, env_of(self), ref, gen)) {
          flush(self, u);
          return;
        }
      for (auto& b : self->state.early) {
        auto& items = b.items;
        auto i = std::find_if(items.begin(), items.end(), [&](auto& w) {
          return w.ref == ref && w.gen == gen;
        });
        if (i != items.end()) {
          items.erase(i);
          return;
        }
      }
    },
    [self](finish_atom, uint64_t seq) {
      auto& st = self->state;
      auto index = seq >> unit_seq_bits;
      if (index >= st.units.size())
        return;
      auto& u = st.units[index];
      if (on_run_event(u, env_of(self), seq,
                       [&](queue_type::started& s, work_report& r) {
                         return u.exec->on_timer(*st.host, seq, s.item, r);
                       }))
        flush(self, u);
    },
    [](tick_atom) {
      // nop: no periodic work
    },
    [self](status_atom) {
      uint32_t held = 0;
      for (auto& u : self->state.units)
        held += static_cast<uint32_t>(u.queue.running() + u.queue.queued());
      return held;
    },
    [self](revoke_batch& b) {
      if (auto* u = unit_in(self, b.slot))
        self->send(self->state.scheduler, answer_revokes(*u, b));
    },
    [self](leave_atom) {
      // Every joined worker leaves; the pool ends with them.
      for (auto& [slot, index] : self->state.by_slot)
        self->send(self->state.scheduler, leave_atom::value, slot);
      self->quit();
    },
  };
}

} // namespace

worker_actor spawn_worker_with(caf::actor_system& sys,
                               scheduler_actor scheduler,
                               worker_core_options opts,
                               std::unique_ptr<executor> exec) {
  // CAF copies spawn arguments: the executor travels in a shared pointer
  // (the state holds the only one once the actor runs).
  std::shared_ptr<executor> e{exec.release()};
  auto h = sys.spawn(worker_behavior, std::move(scheduler), std::move(opts),
                     std::move(e));
  return caf::actor_cast<worker_actor>(h);
}

worker_actor spawn_worker(caf::actor_system& sys, scheduler_actor scheduler,
                          worker_options opts) {
  worker_core_options o;
  // The executor reads the speed before the capabilities move on.
  auto exec = std::make_unique<simulation_executor>(opts);
  o.caps = std::move(opts.caps);
  o.time_scale = opts.time_scale;
  o.report_interval = opts.report_interval / opts.time_scale;
  o.quit_with_error = false;
  o.on_joined = std::move(opts.on_joined);
  return spawn_worker_with(sys, std::move(scheduler), std::move(o),
                           std::move(exec));
}

worker_actor spawn_worker_pool(caf::actor_system& sys,
                               scheduler_actor scheduler,
                               std::vector<worker_options> workers) {
  auto h = sys.spawn(pool_behavior, std::move(scheduler), std::move(workers));
  return caf::actor_cast<worker_actor>(h);
}

} // namespace alb
