#include "actors/worker.hpp"

#include <algorithm>
#include <chrono>
#include <deque>
#include <unordered_map>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "runtime/rng.hpp"
#include "runtime/simulation.hpp"

namespace alb {

namespace {

using std::chrono::duration;
using std::chrono::duration_cast;

struct running_test {
  work_item item;
  simulated_attempt attempt;
  double queued_seconds = 0;
};

struct queued_test {
  work_item item;
  double received_at = 0;
};

struct worker_state {
  static inline const char* name = "alb.worker";

  worker_options opts;
  scheduler_actor scheduler;
  rng random;
  caf::actor_clock::time_point start;
  uint32_t slot = 0;
  bool joined = false;
  int slots = 1;
  double background = 0;
  uint64_t next_seq = 0;
  std::deque<queued_test> queue;
  std::unordered_map<uint64_t, running_test> running;
  std::vector<work_report> out;
};

using worker_impl = revocable_worker_actor::stateful_pointer<worker_state>;

double now_of(worker_impl self) {
  duration<double> d = self->clock().now() - self->state.start;
  return d.count() * self->state.opts.time_scale;
}

double performance(worker_impl self) {
  return warmup_level(self->state.opts.profile, now_of(self));
}

void report(worker_impl self, const work_item& item, const simulated_attempt& a,
            double queued) {
  work_report r;
  r.ref = item.ref;
  r.gen = item.gen;
  r.success = a.success;
  r.timed_out = a.timed_out;
  r.exec_seconds = a.duration;
  r.queued_seconds = queued;
  if (a.timed_out)
    r.error = "timed out after " + std::to_string(item.timeout) + " s";
  else if (!a.success)
    r.error = "simulated failure";
  self->state.out.push_back(std::move(r));
}

// Starts queued tests while slots are free. Tests whose simulated time is
// zero finish on the spot, which keeps zero-duration benchmarks free of
// timer traffic.
void start_more(worker_impl self) {
  auto& st = self->state;
  auto now = now_of(self);
  while (!st.queue.empty() && static_cast<int>(st.running.size()) < st.slots) {
    auto q = std::move(st.queue.front());
    st.queue.pop_front();
    auto a = simulate_attempt(q.item.expected_duration, st.opts.caps.speed,
                              performance(self), st.opts.profile.failure_rate,
                              q.item.timeout, st.random);
    auto queued = std::max(0.0, now - q.received_at);
    auto real = a.duration / st.opts.time_scale;
    if (real <= 0) {
      report(self, q.item, a, queued);
      continue;
    }
    auto seq = st.next_seq++;
    st.running.emplace(seq, running_test{std::move(q.item), a, queued});
    self->delayed_send(self,
                       duration_cast<caf::timespan>(duration<double>(real)),
                       finish_atom::value, seq);
  }
}

void flush(worker_impl self) {
  auto& st = self->state;
  if (st.out.empty() || !st.joined)
    return;
  report_batch b;
  b.slot = st.slot;
  b.items.swap(st.out);
  self->send(st.scheduler, std::move(b));
}

void send_load(worker_impl self) {
  auto& st = self->state;
  worker_load l;
  l.worker_id = st.opts.caps.worker_id;
  auto bg = st.opts.profile.background_load;
  if (bg > 0) {
    // Background load drifts as a bounded random walk.
    st.background
      = std::clamp(st.background + st.random.uniform(-0.2, 0.2) * bg, 0.0, bg);
  }
  l.active_tests = static_cast<int>(st.running.size());
  l.queued_tests = static_cast<int>(st.queue.size());
  l.queue_depth = l.active_tests + l.queued_tests;
  l.cpu_utilization = std::min(
    100.0, 100.0 * l.active_tests / std::max(1, st.slots) + st.background);
  l.performance_level = performance(self);
  l.warming_up = l.performance_level < 1.0;
  self->send(st.scheduler, load_report{st.slot, std::move(l)});
}

revocable_worker_actor::behavior_type worker_behavior(worker_impl self,
                                                      scheduler_actor scheduler,
                                                      worker_options opts) {
  auto& st = self->state;
  st.opts = std::move(opts);
  st.scheduler = scheduler;
  st.random.reseed(st.opts.seed);
  st.start = self->clock().now();
  st.slots = st.opts.caps.max_concurrent_tests > 0
               ? st.opts.caps.max_concurrent_tests
               : std::max(1, st.opts.caps.cpu_cores);
  self->monitor(scheduler);
  self->set_down_handler([self](caf::down_msg&) { self->quit(); });
  auto me = caf::actor_cast<worker_actor>(self);
  self->request(scheduler, caf::infinite, join_atom::value, st.opts.caps, me)
    .then(
      [self](uint32_t slot) {
        auto& st = self->state;
        st.slot = slot;
        st.joined = true;
        // This worker gives back queued tests on request: rebalancing may
        // move them.
        self->send(st.scheduler, revoke_atom::value, slot);
        flush(self);
        self->delayed_send(self,
                           duration_cast<caf::timespan>(duration<double>(
                             st.opts.report_interval / st.opts.time_scale)),
                           tick_atom::value);
      },
      [self](caf::error&) { self->quit(); });
  return {
    [self](work_batch& b) {
      auto& st = self->state;
      auto now = now_of(self);
      for (auto& item : b.items)
        st.queue.push_back(queued_test{std::move(item), now});
      start_more(self);
      flush(self);
    },
    [self](cancel_atom, uint32_t ref, uint32_t gen) {
      auto& st = self->state;
      for (auto i = st.queue.begin(); i != st.queue.end(); ++i) {
        if (i->item.ref == ref && i->item.gen == gen) {
          st.queue.erase(i);
          return;
        }
      }
      for (auto i = st.running.begin(); i != st.running.end(); ++i) {
        if (i->second.item.ref == ref && i->second.item.gen == gen) {
          // The timer still fires; finding nothing, it is ignored.
          st.running.erase(i);
          start_more(self);
          flush(self);
          return;
        }
      }
    },
    [self](finish_atom, uint64_t seq) {
      auto& st = self->state;
      auto i = st.running.find(seq);
      if (i == st.running.end())
        return;
      auto t = std::move(i->second);
      st.running.erase(i);
      report(self, t.item, t.attempt, t.queued_seconds);
      start_more(self);
      flush(self);
    },
    [self](tick_atom) {
      auto& st = self->state;
      send_load(self);
      self->delayed_send(self,
                         duration_cast<caf::timespan>(duration<double>(
                           st.opts.report_interval / st.opts.time_scale)),
                         tick_atom::value);
    },
    [self](revoke_batch& b) {
      auto& st = self->state;
      revoke_reply reply;
      reply.slot = st.slot;
      reply.items.reserve(b.items.size());
      for (auto& r : b.items) {
        // Only a test still waiting in the local queue can go; a started
        // one stays, so no test ever runs twice.
        auto i = std::find_if(
          st.queue.begin(), st.queue.end(), [&](const queued_test& q) {
            return q.item.ref == r.ref && q.item.gen == r.gen;
          });
        bool found = i != st.queue.end();
        if (found)
          st.queue.erase(i);
        reply.items.push_back(revoke_answer{r.ref, r.gen, found});
      }
      self->send(st.scheduler, std::move(reply));
    },
    [self](leave_atom) {
      auto& st = self->state;
      if (st.joined)
        self->send(st.scheduler, leave_atom::value, st.slot);
      self->quit();
    },
  };
}

} // namespace

worker_actor spawn_worker(caf::actor_system& sys, scheduler_actor scheduler,
                          worker_options opts) {
  return sys.spawn(worker_behavior, std::move(scheduler), std::move(opts));
}

} // namespace alb
