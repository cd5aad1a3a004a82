#include "actors/submitter.hpp"

#include <algorithm>
#include <chrono>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

namespace alb {

namespace {

using std::chrono::duration;
using std::chrono::duration_cast;

struct submitter_state {
  static inline const char* name = "alb.submitter";
  submitter_options opts;
  scheduler_actor scheduler;
  rng random;
  caf::actor_clock::time_point start;
  size_t next_wave = 0;
  /// Tests of the current wave still to draw (0 = take the next wave).
  uint64_t wave_left = 0;
  /// Priority of the current wave.
  int wave_priority = 0;
  uint64_t submitted = 0;
};

/// Batches drawn per turn before the submitter yields to its mailbox.
constexpr size_t batches_per_turn = 4;

using submitter_impl = submitter_actor::stateful_pointer<submitter_state>;

double now_of(submitter_impl self) {
  duration<double> d = self->clock().now() - self->state.start;
  return d.count() * self->state.opts.time_scale;
}

void schedule_next(submitter_impl self) {
  auto& st = self->state;
  if (st.next_wave >= st.opts.plan.size()) {
    self->send(st.scheduler, end_atom::value, st.submitted);
    self->quit();
    return;
  }
  auto wait = std::max(0.0, st.opts.plan[st.next_wave].at - now_of(self));
  self->delayed_send(
    self,
    duration_cast<caf::timespan>(duration<double>(wait / st.opts.time_scale)),
    submit_atom::value);
}

submitter_actor::behavior_type submitter_behavior(submitter_impl self,
                                                  scheduler_actor scheduler,
                                                  submitter_options opts) {
  auto& st = self->state;
  st.opts = std::move(opts);
  std::stable_sort(st.opts.plan.begin(), st.opts.plan.end(),
                   [](auto& a, auto& b) { return a.at < b.at; });
  st.scheduler = std::move(scheduler);
  st.random.reseed(st.opts.seed);
  st.start = self->clock().now();
  self->send(self, submit_atom::value);
  return {
    [self](submit_atom) {
      auto& st = self->state;
      auto now = now_of(self);
      test_batch batch;
      batch.tests.reserve(st.opts.batch_size);
      size_t sent = 0;
      auto send_batch = [&] {
        if (!batch.tests.empty()) {
          self->send(st.scheduler, std::move(batch));
          batch = test_batch{};
          batch.tests.reserve(st.opts.batch_size);
          ++sent;
        }
      };
      // A large wave goes out a few batches per turn: in between, the
      // scheduler (and, on one thread, everything else) gets to consume
      // them, so the batches' memory is reused instead of a whole wave
      // sitting in the mailbox at once.
      while (sent < batches_per_turn) {
        if (st.wave_left == 0) {
          if (st.next_wave >= st.opts.plan.size()
              || st.opts.plan[st.next_wave].at > now + 1e-9)
            break;
          auto& wave = st.opts.plan[st.next_wave++];
          st.wave_left = wave.count;
          st.wave_priority = wave.priority;
          continue;
        }
        batch.tests.push_back(draw_test(st.opts.profile, st.random,
                                        st.submitted++, st.wave_priority,
                                        st.opts.id_prefix));
        --st.wave_left;
        if (batch.tests.size() >= st.opts.batch_size)
          send_batch();
      }
      send_batch();
      if (st.wave_left > 0
          || (st.next_wave < st.opts.plan.size()
              && st.opts.plan[st.next_wave].at <= now + 1e-9)) {
        self->send(self, submit_atom::value);
        return;
      }
      schedule_next(self);
    },
    [self](end_atom) {
      // Stop now: what is planned but not sent is never submitted; the
      // scheduler learns the real total and ends once those tests ended.
      auto& st = self->state;
      st.wave_left = 0;
      st.next_wave = st.opts.plan.size();
      schedule_next(self);
    },
  };
}

} // namespace

submitter_actor spawn_submitter(caf::actor_system& sys,
                                scheduler_actor scheduler,
                                submitter_options opts) {
  return sys.spawn(submitter_behavior, std::move(scheduler), std::move(opts));
}

} // namespace alb
