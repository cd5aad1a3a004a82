#include "actors/churn.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "runtime/rng.hpp"

namespace alb {

namespace {

using std::chrono::duration;
using std::chrono::duration_cast;

struct churn_state {
  static inline const char* name = "alb.churn";
  churn_options opts;
  scheduler_actor scheduler;
  rng random;
  caf::actor_clock::time_point start;
  size_t next = 0;
  uint64_t added = 0;
  /// A kill is waiting for the workers' answers (later events wait too).
  bool killing = false;
  /// Polls of a kill that found every worker idle so far.
  int idle_polls = 0;
};

using churn_impl = churn_actor::stateful_pointer<churn_state>;

double now_of(churn_impl self) {
  duration<double> d = self->clock().now() - self->state.start;
  return d.count() * self->state.opts.time_scale;
}

void schedule_next(churn_impl self) {
  auto& st = self->state;
  if (st.killing)
    return;
  if (st.next >= st.opts.script.size()) {
    self->quit();
    return;
  }
  auto wait = std::max(0.0, st.opts.script[st.next].at - now_of(self));
  self->delayed_send(
    self,
    duration_cast<caf::timespan>(duration<double>(wait / st.opts.time_scale)),
    churn_atom::value);
}

uint64_t affected(const churn_event& e, size_t present) {
  if (e.fraction > 0)
    return static_cast<uint64_t>(
      std::llround(e.fraction * static_cast<double>(present)));
  return e.count;
}

void kill_busiest(churn_impl self, uint64_t n);

void apply(churn_impl self, const churn_event& e) {
  auto& st = self->state;
  auto& ws = st.opts.workers;
  auto n = affected(e, ws.size());
  if (e.action == churn_event::kind::add) {
    // LB_MAX_WORKERS is a hard cap on workers present at once, random churn
    // included: `ws` is every worker present.
    if (st.opts.max_workers > 0)
      n = std::min<uint64_t>(n, st.opts.max_workers > ws.size()
                                  ? st.opts.max_workers - ws.size()
                                  : 0);
    for (uint64_t i = 0; i < n; ++i) {
      auto wo = st.opts.worker_template;
      wo.caps = draw_worker(st.opts.profile, st.random,
                            "w-late-" + std::to_string(st.added++));
      wo.seed = st.random.next();
      ws.push_back(spawn_worker(self->home_system(), st.scheduler, wo));
    }
    return;
  }
  // Never take the last worker: a cluster with none left cannot finish.
  n = std::min<uint64_t>(n, ws.size() > 0 ? ws.size() - 1 : 0);
  if (e.action == churn_event::kind::kill) {
    if (n > 0)
      kill_busiest(self, n);
    return;
  }
  for (uint64_t i = 0; i < n; ++i) {
    auto k = st.random.below(ws.size());
    auto w = ws[k];
    ws[k] = ws.back();
    ws.pop_back();
    self->send(w, leave_atom::value);
  }
}

/// Answers of one kill's poll: how many placements each worker holds.
struct kill_poll {
  uint64_t victims = 0;
  size_t waiting = 0;
  std::vector<std::pair<uint32_t, worker_actor>> held;
};

void finish_kill(churn_impl self, kill_poll& poll) {
  auto& st = self->state;
  auto busiest
    = std::max_element(poll.held.begin(), poll.held.end(),
                       [](auto& a, auto& b) { return a.first < b.first; });
  // A crash is there to show that what a worker held is requeued: when
  // every worker is idle at that instant, look again a little later (at
  // most 50 times, then crash idle ones) rather than crash a worker that
  // holds nothing.
  if ((busiest == poll.held.end() || busiest->first == 0)
      && st.idle_polls++ < 50) {
    auto v = poll.victims;
    self->delayed_send(self, std::chrono::milliseconds(20), churn_atom::value,
                       v);
    return;
  }
  // Busiest first; ties keep the random order of the draw below.
  for (size_t i = poll.held.size(); i > 1; --i)
    std::swap(poll.held[i - 1], poll.held[st.random.below(i)]);
  std::stable_sort(poll.held.begin(), poll.held.end(),
                   [](auto& a, auto& b) { return a.first > b.first; });
  auto& ws = st.opts.workers;
  for (uint64_t i = 0; i < poll.victims && i < poll.held.size(); ++i) {
    auto& w = poll.held[i].second;
    auto it = std::find(ws.begin(), ws.end(), w);
    if (it == ws.end() || ws.size() <= 1)
      continue;
    *it = ws.back();
    ws.pop_back();
    self->send_exit(w, caf::exit_reason::kill);
  }
  st.killing = false;
  st.idle_polls = 0;
  schedule_next(self);
}

// Asks every present worker what it holds, then kills the `n` holding most.
void kill_busiest(churn_impl self, uint64_t n) {
  auto& st = self->state;
  st.killing = true;
  auto poll = std::make_shared<kill_poll>();
  poll->victims = n;
  poll->waiting = st.opts.workers.size();
  for (auto& w : st.opts.workers) {
    auto answered = [self, poll, w](uint32_t held) {
      poll->held.emplace_back(held, w);
      if (--poll->waiting == 0)
        finish_kill(self, *poll);
    };
    // A worker that is gone answers with an error: it is no candidate.
    auto gone = [self, poll](caf::error&) {
      if (--poll->waiting == 0)
        finish_kill(self, *poll);
    };
    self->request(w, caf::infinite, status_atom::value)
      .then(std::move(answered), std::move(gone));
  }
}

churn_actor::behavior_type
churn_behavior(churn_impl self, scheduler_actor scheduler, churn_options opts) {
  auto& st = self->state;
  st.opts = std::move(opts);
  std::stable_sort(st.opts.script.begin(), st.opts.script.end(),
                   [](auto& a, auto& b) { return a.at < b.at; });
  st.scheduler = std::move(scheduler);
  st.random.reseed(st.opts.seed);
  st.start = self->clock().now();
  // Workers stop with the scheduler; so does the script.
  self->monitor(st.scheduler);
  self->set_down_handler([self](caf::down_msg&) { self->quit(); });
  schedule_next(self);
  return {
    [self](churn_atom) {
      auto& st = self->state;
      auto now = now_of(self);
      while (!st.killing && st.next < st.opts.script.size()
             && st.opts.script[st.next].at <= now + 1e-9)
        apply(self, st.opts.script[st.next++]);
      schedule_next(self);
    },
    [self](churn_atom, uint64_t victims) {
      // A kill that found every worker idle looks again.
      kill_busiest(self, victims);
    },
  };
}

} // namespace

churn_actor spawn_churn(caf::actor_system& sys, scheduler_actor scheduler,
                        churn_options opts) {
  return sys.spawn(churn_behavior, std::move(scheduler), std::move(opts));
}

} // namespace alb
