#include "actors/scheduler.hpp"

#include <algorithm>
#include <chrono>
#include <iostream>
#include <sstream>
#include <unordered_map>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <nlohmann/json.hpp>

#include "actors/caf_ec.hpp"
#include "runtime/cluster_status.hpp"
#include "runtime/liveness.hpp"
#include "runtime/simulation.hpp"

namespace alb {

namespace {

using std::chrono::duration;
using std::chrono::duration_cast;

struct scheduler_state {
  static inline const char* name = "alb.scheduler";

  scheduler_options opts;
  std::unique_ptr<cluster_state> core;
  caf::actor_clock::time_point start;
  std::vector<worker_actor> handles;
  /// The slot of each worker's actor (for an actor hosting several, one
  /// of them: see `shared`).
  std::unordered_map<caf::actor_addr, uint32_t> by_addr;
  /// Every slot of each actor that hosts more than one worker (a pool of
  /// simulated workers): its end ends them all.
  std::unordered_map<caf::actor_addr, std::vector<uint32_t>> shared;
  uint64_t received = 0;
  uint64_t expected = std::numeric_limits<uint64_t>::max();
  bool finished = false;
  /// Where the next tick's share of per-worker gauges starts (an index
  /// into the core's live workers).
  size_t gauge_cursor = 0;
  /// When each slot's worker was last heard from (scheduler clock; < 0 =
  /// never), for the status view.
  std::vector<double> last_seen;
  /// Deadlines of started placements with a timeout (timeout_grace >= 0).
  test_deadlines deadlines;
  /// Split scheduler only: tests this shard refused (they settle here).
  uint64_t rejected = 0;
  /// Of this shard's settled tests (ended + refused), those already added
  /// to the group's count.
  uint64_t published = 0;
  /// A steal request of this shard awaits its answer.
  bool steal_pending = false;
  /// No steal request before this time (after an empty answer).
  double next_steal = 0;
  /// The shard asked last, and the one the next submitted test goes to.
  uint32_t steal_cursor = 0;
  uint32_t route_cursor = 0;
  /// Tests this shard's workers may hold in all (slots plus prefetch).
  int64_t capacity = 0;
};

uint64_t deadline_key(uint32_t ref, uint32_t gen) {
  return (static_cast<uint64_t>(ref) << 32) | gen;
}

// Every scheduler has the shard handlers; they act only when the options
// make it a shard (the interface is never published: see shard_actor).
using scheduler_impl = shard_actor::stateful_pointer<scheduler_state>;

caf::timespan real_delay(double sim_seconds, double scale) {
  return duration_cast<caf::timespan>(duration<double>(sim_seconds / scale));
}

double now_of(scheduler_impl self) {
  auto& st = self->state;
  duration<double> d = self->clock().now() - st.start;
  return d.count() * st.opts.time_scale;
}

// Sends every placement the core made since the last flush: one message per
// worker however many tests it got.
void flush(scheduler_impl self) {
  auto& st = self->state;
  st.core->drain_outbox([&](uint32_t slot, std::vector<test_handle>& hs) {
    work_batch batch;
    batch.slot = slot;
    batch.items.reserve(hs.size());
    for (auto h : hs) {
      auto& rec = st.core->record(h);
      work_item item;
      item.ref = h.ref;
      item.gen = h.gen;
      item.test_id = rec.req.test_id;
      item.expected_duration = rec.req.expected_duration;
      if (st.opts.duration_noise > 0)
        item.expected_duration *= duration_noise_factor(
          rec.req.test_id, st.opts.noise_seed, st.opts.duration_noise);
      item.timeout = rec.req.timeout;
      item.priority = rec.req.priority;
      item.accelerators = rec.req.required_accelerators;
      // How to run it rides in the record (a copy per placement: a
      // retried or requeued test is placed again).
      if (!rec.run.empty()) {
        item.command = rec.run->command;
        item.env = rec.run->env;
        item.cwd = rec.run->cwd;
        item.max_output = rec.run->max_output;
      }
      batch.items.push_back(std::move(item));
    }
    if (slot >= st.handles.size() || !st.handles[slot])
      return;
    if (st.opts.route && st.opts.route(st.handles[slot], batch))
      return;
    self->send(st.handles[slot], std::move(batch));
  });
  // Revokes after placements: a worker sees its placements before any
  // request to give one back.
  st.core->drain_revokes([&](uint32_t slot, std::vector<test_handle>& hs) {
    revoke_batch batch;
    batch.slot = slot;
    batch.items.reserve(hs.size());
    for (auto h : hs)
      batch.items.push_back(revoke_item{h.ref, h.gen});
    // Only workers that announced `revoke_atom` are ever sources.
    if (slot < st.handles.size() && st.handles[slot])
      self->send(caf::actor_cast<revocable_worker_actor>(st.handles[slot]),
                 std::move(batch));
  });
  // Losing copies of speculated tests: stopped without a report, as for a
  // cancel.
  st.core->drain_cancels([&](uint32_t slot, test_handle h) {
    if (slot < st.handles.size() && st.handles[slot])
      self->send(st.handles[slot], cancel_atom::value, h.ref, h.gen);
  });
  if (st.opts.on_flush)
    st.opts.on_flush();
}

std::string metrics_json(scheduler_impl self) {
  auto& core = *self->state.core;
  return metrics_document(core.stats(), now_of(self), core.worker_count(),
                          core.queued() + core.parked() + core.key_waiting(),
                          core.active_strategy().name());
}

void sample(scheduler_impl self, double now) {
  auto& st = self->state;
  if (!st.opts.recorder)
    return;
  auto d = st.core->take_tick_delta();
  series_sample s;
  s.now = now;
  s.completed = d.completed;
  s.started = d.started;
  s.latency_sum = d.latency_sum;
  s.queue_depth = static_cast<double>(st.core->queued() + st.core->parked()
                                      + st.core->key_waiting());
  s.workers = static_cast<double>(st.core->worker_count());
  s.source = st.opts.shard_index;
  if (st.opts.shards)
    send_across(st.opts.recorder, self->ctrl(), std::move(s));
  else
    self->send(st.opts.recorder, std::move(s));
}

void stop_workers(scheduler_impl self) {
  auto& st = self->state;
  for (uint32_t slot = 0; slot < st.handles.size(); ++slot) {
    auto& h = st.handles[slot];
    // An actor hosting several workers is told once.
    if (h && (st.shared.empty() || st.by_addr[h.address()] == slot))
      self->send_exit(h, caf::exit_reason::user_shutdown);
  }
}

/// Most per-worker load gauges published per tick: a tick's cost stays
/// bounded however large the pool (100,000 workers are all refreshed within
/// ~10 s of ticks at 0.1 s).
constexpr size_t gauges_per_tick = 1024;

void publish_load(scheduler_impl self, uint32_t slot) {
  auto& st = self->state;
  st.opts.observer->on_worker_load(
    slot, st.core->load_of(slot),
    static_cast<int>(st.core->worker(slot).held.size()));
}

// Hands the observer the cluster gauges and, with `loads`, every worker's
// load: when a worker joins or leaves and when the run ends, so the gauges
// never keep a state the cluster has left.
void publish_gauges(scheduler_impl self, double now, bool loads) {
  auto& st = self->state;
  if (!st.opts.observer)
    return;
  st.opts.observer->on_snapshot(st.core->snapshot(now));
  if (loads)
    for (auto slot : st.core->live_workers())
      publish_load(self, slot);
}

// A tick's share of the gauges: the cluster's, and the next
// `gauges_per_tick` workers' loads in turn.
void publish_tick_gauges(scheduler_impl self, double now) {
  auto& st = self->state;
  if (!st.opts.observer)
    return;
  publish_gauges(self, now, false);
  auto& live = st.core->live_workers();
  auto n = std::min(live.size(), gauges_per_tick);
  for (size_t i = 0; i < n; ++i)
    publish_load(self, live[(st.gauge_cursor + i) % live.size()]);
  st.gauge_cursor = live.empty() ? 0 : (st.gauge_cursor + n) % live.size();
}

// A shard's part of the end: adds what settled here since the last call to
// the group's count; whoever sees the count reach the run's total says so.
// Both counters are read after the own write (sequentially consistent), so
// the shard adding the last test and shard 0 learning the total cannot both
// miss the moment.
void settle(scheduler_impl self) {
  auto& st = self->state;
  auto& g = *st.opts.shards;
  auto settled = st.core->stats().ended() + st.rejected;
  if (settled > st.published) {
    g.settled.fetch_add(settled - st.published);
    st.published = settled;
  }
  if (g.settled.load() == g.expected.load() && !g.all_settled.exchange(true))
    finish_shards(g);
}

void check_end(scheduler_impl self) {
  auto& st = self->state;
  if (st.opts.shards) {
    settle(self);
    return;
  }
  if (st.finished || !st.opts.finish_when_done || st.received < st.expected
      || st.core->open_tests() > 0)
    return;
  st.finished = true;
  auto now = now_of(self);
  publish_gauges(self, now, true);
  sample(self, now);
  if (st.opts.recorder)
    self->send(st.opts.recorder, end_atom::value, metrics_json(self));
  stop_workers(self);
  self->quit();
}

// Runs a dispatch pass; with an observer, also measures it (the core has
// no clock of its own).
void dispatch(scheduler_impl self, double now) {
  auto& st = self->state;
  if (!st.opts.observer) {
    st.core->dispatch(now);
    return;
  }
  auto before = st.core->placements();
  auto t0 = std::chrono::steady_clock::now();
  st.core->dispatch(now);
  auto dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
              .count();
  auto placed = st.core->placements() - before;
  if (placed > 0)
    st.opts.observer->on_decision(dt / static_cast<double>(placed), placed);
}

void after_change(scheduler_impl self) {
  dispatch(self, now_of(self));
  flush(self);
  check_end(self);
}

void remove(scheduler_impl self, uint32_t slot, bool lost) {
  auto& st = self->state;
  if (slot >= st.handles.size() || !st.handles[slot])
    return;
  st.capacity -= st.core->worker(slot).capacity;
  auto addr = st.handles[slot].address();
  auto sh = st.shared.find(addr);
  if (sh != st.shared.end()) {
    // One of an actor's several workers: the actor stays known (and
    // monitored) for the others.
    auto& slots = sh->second;
    slots.erase(std::find(slots.begin(), slots.end(), slot));
    if (!slots.empty()) {
      st.by_addr[addr] = slots.front();
      addr = nullptr;
    } else {
      st.shared.erase(sh);
    }
  }
  if (addr) {
    st.by_addr.erase(addr);
    if (!lost)
      self->demonitor(addr);
  }
  st.handles[slot] = nullptr;
  st.core->remove_worker(slot, lost, now_of(self));
  publish_gauges(self, now_of(self), false);
  after_change(self);
}

// Notes that the worker in `slot` was heard from now.
void seen(scheduler_impl self, uint32_t slot, double now) {
  auto& ls = self->state.last_seen;
  if (slot >= ls.size())
    ls.resize(slot + 1, -1);
  ls[slot] = now;
}

// Started placements whose worker has not reported them past timeout +
// grace (a hung worker, a stopped node whose heartbeats the coordinator
// has not missed for long enough yet): each attempt fails as timed out, so
// the test is retried elsewhere or fails, and the worker is told to drop
// it. Whatever the worker reports for it later is stale.
void expire_overdue(scheduler_impl self, double now) {
  auto& st = self->state;
  if (st.opts.timeout_grace < 0 || st.deadlines.size() == 0)
    return;
  for (auto key : st.deadlines.expired(now)) {
    test_handle h{static_cast<uint32_t>(key >> 32),
                  static_cast<uint32_t>(key & 0xffffffffu)};
    auto slot = st.core->holder(h);
    if (slot == cluster_state::npos)
      continue;
    auto& rec = st.core->record(h);
    auto id = rec.req.test_id;
    auto timeout = rec.req.timeout;
    auto worker = st.core->worker(slot).caps.worker_id;
    auto retry = rec.failures < rec.req.retries;
    attempt_outcome o;
    o.success = false;
    o.timed_out = true;
    o.exit_code = -1;
    o.exec_seconds = rec.started_at >= 0 ? now - rec.started_at : 0;
    std::ostringstream why;
    why << "no report from worker '" << worker << "' within its timeout ("
        << timeout << " s) + " << st.opts.timeout_grace
        << " s: given up by the coordinator";
    o.error = why.str();
    if (!st.core->complete(slot, h, o, now))
      continue;
    if (slot < st.handles.size() && st.handles[slot])
      self->send(st.handles[slot], cancel_atom::value, h.ref, h.gen);
    if (st.opts.log)
      st.opts.log("test '" + id + "' overdue: " + o.error + "; "
                  + (retry ? "retried" : "failed"));
  }
}

// Ends the reported attempts of one worker and refills it.
void take_reports(scheduler_impl self, report_batch& batch, double now) {
  auto& st = self->state;
  seen(self, batch.slot, now);
  if (batch.external_load >= 0) {
    // The worker's load changed beyond its own tests: before the refill,
    // which ranks by load.
    worker_load l;
    l.cpu_utilization = 100.0 * batch.external_load;
    st.core->update_load(batch.slot, l);
  }
  if (st.opts.timeout_grace >= 0) {
    // Starts first: a test that started and ended within one batch is
    // armed and disarmed at once.
    for (auto& p : batch.started) {
      test_handle h{p.ref, p.gen};
      if (st.core->holder(h) != batch.slot)
        continue;
      auto timeout = st.core->record(h).req.timeout;
      if (timeout <= 0)
        continue;
      st.core->started(batch.slot, h, now);
      st.deadlines.arm(deadline_key(p.ref, p.gen),
                       now + timeout + st.opts.timeout_grace);
    }
    for (auto& r : batch.items)
      st.deadlines.disarm(deadline_key(r.ref, r.gen));
  }
  // The core ends only placements this slot holds under this generation:
  // a stale report (requeued test, reused slot) changes nothing.
  attempt_outcome o;
  for (auto& r : batch.items) {
    o.success = r.success;
    o.timed_out = r.timed_out;
    o.exec_seconds = r.exec_seconds;
    o.queued_seconds = r.queued_seconds;
    o.exit_code = r.exit_code;
    o.error = std::move(r.error);
    o.output_tail = std::move(r.output_tail);
    o.signal = r.signal;
    o.stderr_tail = std::move(r.stderr_tail);
    st.core->complete(batch.slot, test_handle{r.ref, r.gen}, o, now);
  }
  // The report doubles as the worker's request for more: refill it in one
  // batch before the general pass.
  st.core->refill(batch.slot, now);
  // Still idle with nothing queued here: take work from the busiest.
  st.core->steal(batch.slot, now);
}

bool from_member(scheduler_impl self) {
  auto& g = *self->state.opts.shards;
  auto sender = caf::actor_cast<caf::actor_addr>(self->current_sender());
  if (!sender || !g.ready.load(std::memory_order_acquire))
    return false;
  for (auto& m : g.members)
    if (m.address() == sender)
      return true;
  return false;
}

// A shard with free capacity and nothing waiting asks the next shard for a
// share of its queue; one request at a time, and after an empty answer not
// again before a tick has passed.
void maybe_steal(scheduler_impl self, double now) {
  auto& st = self->state;
  if (!st.opts.shards || st.steal_pending || st.finished || now < st.next_steal)
    return;
  auto& g = *st.opts.shards;
  if (!g.ready.load(std::memory_order_acquire) || g.members.size() < 2)
    return;
  if (st.core->queued() + st.core->parked() + st.core->key_waiting() > 0)
    return;
  auto free = st.capacity - static_cast<int64_t>(st.core->in_flight());
  if (free <= 0)
    return;
  auto n = static_cast<uint32_t>(g.members.size());
  st.steal_cursor = (st.steal_cursor + 1) % n;
  if (st.steal_cursor == st.opts.shard_index)
    st.steal_cursor = (st.steal_cursor + 1) % n;
  st.steal_pending = true;
  send_across(g.members[st.steal_cursor], self->ctrl(), steal_atom::value,
              st.opts.shard_index, static_cast<uint64_t>(free));
}

bool fits_shard(const shard_capacity& c, const test_requirements& t) {
  if (t.minimum_memory > c.max_memory)
    return false;
  for (auto& [name, count] : t.required_accelerators) {
    if (count <= 0)
      continue;
    auto it = c.max_accelerators.find(name);
    if (it == c.max_accelerators.end() || it->second < count)
      return false;
  }
  return true;
}

// Takes tests handed to this shard (a share of a submission or a steal).
void take_handover(scheduler_impl self, shard_handover& h, double now) {
  auto& st = self->state;
  bool runs = h.runs.size() == h.tests.size();
  for (size_t i = 0; i < h.tests.size(); ++i) {
    handed_test t;
    t.req = std::move(h.tests[i]);
    if (runs)
      t.run = std::move(h.runs[i]);
    t.submitted_at = i < h.submitted_at.size() ? h.submitted_at[i] : now;
    if (st.core->adopt(std::move(t), now, h.stolen)
        != cluster_state::submit_status::accepted) {
      ++st.rejected;
      std::cerr << "alb: rejected test: " << st.core->last_error() << "\n";
    }
  }
}

// `batch` split into one share per shard of `g` (`shard_for`), each test
// stamped `now` as its submission time unless `now` is negative (then each
// shard counts the wait from the share's arrival).
std::vector<shard_handover> split_batch(const shard_group& g, uint32_t& cursor,
                                        test_batch& batch, double now) {
  std::vector<shard_handover> parts(g.members.size());
  bool runs = batch.runs.size() == batch.tests.size();
  bool stamped = now >= 0;
  // Most tests go round in turn: an even share each, plus room for drift.
  auto share = batch.tests.size() / parts.size() + 8;
  for (auto& part : parts) {
    part.tests.reserve(share);
    if (stamped)
      part.submitted_at.reserve(share);
    if (runs)
      part.runs.reserve(share);
  }
  for (size_t i = 0; i < batch.tests.size(); ++i) {
    auto& part = parts[shard_for(g, cursor, batch.tests[i])];
    part.tests.push_back(std::move(batch.tests[i]));
    if (runs)
      part.runs.push_back(std::move(batch.runs[i]));
    if (stamped)
      part.submitted_at.push_back(now);
  }
  return parts;
}

// Shard 0 of a split scheduler: each shard gets its share of a submission.
void route(scheduler_impl self, test_batch& batch, double now) {
  auto& st = self->state;
  auto& g = *st.opts.shards;
  auto parts = split_batch(g, st.route_cursor, batch, now);
  for (size_t j = 0; j < parts.size(); ++j) {
    if (parts[j].tests.empty())
      continue;
    if (j == st.opts.shard_index)
      take_handover(self, parts[j], now);
    else
      send_across(g.members[j], self->ctrl(), std::move(parts[j]));
  }
}

shard_actor::behavior_type scheduler_behavior(scheduler_impl self,
                                              scheduler_options opts) {
  auto& st = self->state;
  st.opts = std::move(opts);
  st.core = std::make_unique<cluster_state>(st.opts.config);
  st.core->set_observer(st.opts.observer);
  st.core->set_end_listener(st.opts.on_end);
  st.start = self->clock().now();
  if (st.opts.expected_workers > 0) {
    auto n = st.opts.expected_workers;
    st.core->reserve_workers(n);
    st.handles.reserve(n);
    st.last_seen.reserve(n);
    st.by_addr.reserve(n);
  }
  if (st.opts.shards) {
    st.start = st.opts.shards->start;
    // The run's peak throughput is computed from every shard's completions.
    st.core->stats().keep_completion_times();
    st.steal_cursor = st.opts.shard_index;
  }
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    if (auto sh = st.shared.find(dm.source); sh != st.shared.end()) {
      // Every worker the actor hosted is lost with it.
      auto slots = sh->second;
      for (auto slot : slots)
        remove(self, slot, true);
      return;
    }
    auto it = st.by_addr.find(dm.source);
    if (it != st.by_addr.end())
      remove(self, it->second, true);
  });
  self->set_exit_handler([self](caf::exit_msg& em) {
    // Workers die with the scheduler they serve.
    stop_workers(self);
    self->quit(em.reason);
  });
  auto tick_delay
    = real_delay(st.opts.config.tick_interval, st.opts.time_scale);
  self->delayed_send(self, tick_delay, tick_atom::value);
  return {
    [self](test_batch& batch) {
      auto& st = self->state;
      auto now = now_of(self);
      if (st.opts.shards) {
        // The run submits to shard 0, which passes each shard its share
        // (before the group is complete, or anywhere else, it keeps them).
        if (st.opts.shard_index == 0
            && st.opts.shards->ready.load(std::memory_order_acquire)) {
          route(self, batch, now);
        } else {
          shard_handover own;
          own.tests = std::move(batch.tests);
          own.runs = std::move(batch.runs);
          own.submitted_at.assign(own.tests.size(), now);
          take_handover(self, own, now);
        }
        after_change(self);
        return;
      }
      bool runs = batch.runs.size() == batch.tests.size();
      for (size_t i = 0; i < batch.tests.size(); ++i) {
        auto& t = batch.tests[i];
        ++st.received;
        auto res
          = runs ? st.core->submit(std::move(t), std::move(batch.runs[i]), now)
                 : st.core->submit(std::move(t), now);
        if (res != cluster_state::submit_status::accepted)
          std::cerr << "alb: rejected test: " << st.core->last_error() << "\n";
      }
      after_change(self);
    },
    [self](join_atom, worker_capabilities& caps,
           worker_actor& w) -> caf::result<uint32_t> {
      auto& st = self->state;
      uint32_t slot;
      try {
        slot = st.core->add_worker(std::move(caps), now_of(self));
      } catch (const std::exception& e) {
        return caf::make_error(ec::bad_worker, std::string{e.what()});
      }
      if (slot >= st.handles.size())
        st.handles.resize(slot + 1);
      st.handles[slot] = w;
      auto [known, fresh] = st.by_addr.emplace(w.address(), slot);
      if (fresh) {
        self->monitor(w);
      } else {
        // Another worker of an actor hosting several (one monitor serves
        // them all).
        auto& slots = st.shared[w.address()];
        if (slots.empty())
          slots.push_back(known->second);
        slots.push_back(slot);
      }
      st.capacity += st.core->worker(slot).capacity;
      seen(self, slot, now_of(self));
      // Not a rebalancing source until it says it answers revokes.
      st.core->set_revocable(slot, false);
      publish_gauges(self, now_of(self), false);
      after_change(self);
      return slot;
    },
    [self](report_batch& batch) {
      auto now = now_of(self);
      take_reports(self, batch, now);
      after_change(self);
      maybe_steal(self, now);
    },
    [self](report_bundle& bundle) {
      auto now = now_of(self);
      for (auto& batch : bundle.batches)
        take_reports(self, batch, now);
      // One pass and one flush for the whole node: its placements go back
      // as one message too.
      after_change(self);
    },
    [self](revoke_reply& reply) {
      auto& st = self->state;
      auto now = now_of(self);
      seen(self, reply.slot, now);
      for (auto& a : reply.items)
        st.core->revoked(reply.slot, test_handle{a.ref, a.gen}, a.given_back,
                         now);
      after_change(self);
    },
    [self](revoke_atom, uint32_t slot) {
      auto& st = self->state;
      // Trust the announcement only from the worker holding that slot.
      auto sender = caf::actor_cast<caf::actor_addr>(self->current_sender());
      if (sender && slot < st.handles.size() && st.handles[slot]
          && st.handles[slot].address() == sender)
        st.core->set_revocable(slot, true);
    },
    [self](load_report& r) {
      seen(self, r.slot, now_of(self));
      self->state.core->update_load(r.slot, r.load);
    },
    [self](leave_atom, uint32_t slot) { remove(self, slot, false); },
    [self, tick_delay](tick_atom) {
      auto& st = self->state;
      auto now = now_of(self);
      expire_overdue(self, now);
      st.core->tick(now);
      dispatch(self, now);
      flush(self);
      // Per-worker gauges a bounded share per tick: no tick costs O(workers).
      publish_tick_gauges(self, now);
      if (st.opts.check_invariants && st.opts.on_violation) {
        auto err = st.core->check_invariants();
        if (!err.empty())
          st.opts.on_violation(err);
      }
      if (st.opts.on_tick)
        st.opts.on_tick(*st.core, now);
      sample(self, now);
      check_end(self);
      maybe_steal(self, now);
      if (!st.finished)
        self->delayed_send(self, tick_delay, tick_atom::value);
    },
    [self](end_atom, uint64_t total) {
      auto& st = self->state;
      st.expected = total;
      if (st.opts.shards && st.opts.shard_index == 0)
        st.opts.shards->expected.store(total);
      check_end(self);
    },
    [self](steal_atom, uint32_t from, uint64_t max) {
      auto& st = self->state;
      if (!st.opts.shards || !from_member(self)
          || from >= st.opts.shards->members.size())
        return;
      auto& g = *st.opts.shards;
      // At most half of what waits here, so two shards do not trade the
      // same tests back and forth.
      auto give = std::min<uint64_t>(max, (st.core->queued() + 1) / 2);
      std::vector<handed_test> out;
      out.reserve(static_cast<size_t>(give));
      auto memory
        = from < g.capacity.size() ? g.capacity[from].max_memory : 0.0;
      st.core->hand_over(static_cast<size_t>(give), memory, out);
      shard_handover h;
      h.stolen = true;
      h.tests.reserve(out.size());
      h.runs.reserve(out.size());
      h.submitted_at.reserve(out.size());
      for (auto& t : out) {
        h.tests.push_back(std::move(t.req));
        h.runs.push_back(std::move(t.run));
        h.submitted_at.push_back(t.submitted_at);
      }
      // Always answered, empty too: the asker waits for it.
      send_across(g.members[from], self->ctrl(), std::move(h));
    },
    [self](shard_handover& h) {
      auto& st = self->state;
      // From another shard, or a share of a submission from the run itself
      // (no sender: `submit_to_shards`, the run's feeder thread).
      if (!st.opts.shards
          || !(from_member(self) || (!self->current_sender() && !h.stolen)))
        return;
      auto now = now_of(self);
      if (h.stolen) {
        st.steal_pending = false;
        if (h.tests.empty())
          st.next_steal = now + st.opts.config.tick_interval;
      }
      take_handover(self, h, now);
      after_change(self);
    },
    [self](finish_atom) {
      auto& st = self->state;
      // From the run itself (no sender), once: the shard's part and stop.
      if (!st.opts.shards || st.finished || self->current_sender())
        return;
      st.finished = true;
      auto now = now_of(self);
      publish_gauges(self, now, true);
      sample(self, now);
      if (st.opts.shards->on_finished)
        st.opts.shards->on_finished(st.opts.shard_index, *st.core, now);
      stop_workers(self);
      self->quit();
    },
    [self](stats_atom) -> std::string { return metrics_json(self); },
    [self](status_atom, uint64_t max_rows) -> std::string {
      auto& st = self->state;
      auto now = now_of(self);
      auto wall = std::chrono::duration<double>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
      auto s = status_of(*st.core, now, wall - now / st.opts.time_scale,
                         st.last_seen, static_cast<size_t>(max_rows));
      return nlohmann::json(s).dump();
    },
    [self](log_atom, std::string& id) -> uint32_t {
      return self->state.core->placed_slot(id);
    },
    [self](cancel_atom, std::string& id) {
      auto& st = self->state;
      uint32_t slot;
      test_handle h;
      if (st.core->cancel(id, now_of(self), &slot, &h)
          && slot != cluster_state::npos && slot < st.handles.size()
          && st.handles[slot])
        self->send(st.handles[slot], cancel_atom::value, h.ref, h.gen);
      after_change(self);
    },
    [self](cancel_atom,
           std::vector<std::string>& ids) -> std::vector<std::string> {
      auto& st = self->state;
      auto now = now_of(self);
      std::vector<std::string> done;
      // All in one turn, in the order given: a concurrency key or a slot
      // one of them frees is not handed to another of them in between.
      for (auto& id : ids) {
        uint32_t slot;
        test_handle h;
        if (!st.core->cancel(id, now, &slot, &h))
          continue;
        if (slot != cluster_state::npos && slot < st.handles.size()
            && st.handles[slot])
          self->send(st.handles[slot], cancel_atom::value, h.ref, h.gen);
        done.push_back(std::move(id));
      }
      after_change(self);
      return done;
    },
  };
}

} // namespace

size_t shard_for(const shard_group& g, uint32_t& cursor,
                 const test_requirements& t) {
  auto n = g.members.size();
  if (!t.concurrency_key.empty())
    return std::hash<std::string>{}(t.concurrency_key) % n;
  auto first = cursor++ % n;
  for (size_t k = 0; k < n; ++k) {
    auto j = (first + k) % n;
    if (j >= g.capacity.size() || fits_shard(g.capacity[j], t))
      return j;
  }
  // Fits nowhere: where it is refused or waits for its limit matters not.
  return first;
}

void submit_to_shards(const shard_group& g, uint32_t& cursor,
                      test_batch&& batch) {
  // No submission times: each shard counts a test's wait from its arrival,
  // as it does for a test_batch.
  auto parts = split_batch(g, cursor, batch, -1);
  for (size_t j = 0; j < parts.size(); ++j)
    if (!parts[j].tests.empty())
      send_across(g.members[j], nullptr, std::move(parts[j]));
}

void finish_shards(const shard_group& g) {
  for (auto& m : g.members)
    send_across(m, nullptr, finish_atom::value);
}

std::string metrics_document(const run_stats& stats, double now,
                             uint64_t workers, uint64_t waiting,
                             std::string_view strategy) {
  nlohmann::json j = stats.metrics(now, workers, waiting);
  j["strategy"] = std::string{strategy};
  return j.dump();
}

scheduler_actor spawn_scheduler(caf::actor_system& sys,
                                scheduler_options opts) {
  return sys.spawn(scheduler_behavior, std::move(opts));
}

shard_actor spawn_shard(caf::actor_system& sys, scheduler_options opts) {
  return sys.spawn(scheduler_behavior, std::move(opts));
}

} // namespace alb
