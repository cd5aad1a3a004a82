#include "actors/system.hpp"

#include <algorithm>
#include <string_view>
#include <thread>

#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>

#include "actors/caf_ec.hpp"
#include "actors/messages.hpp"

namespace alb {

size_t busy_polls_for(int us) {
  return us > 0 ? static_cast<size_t>(us) * 300 : 0;
}

void configure_system(caf::actor_system_config& cfg, int threads,
                      bool deterministic, const char* policy,
                      int busy_poll_us) {
  cfg.add_message_types<caf::id_block::alb>();
  add_alb_errors(cfg);
  if (deterministic) {
    cfg.set("scheduler.policy", caf::atom("testing"));
    cfg.set("scheduler.max-threads", 1);
    return;
  }
  // CAF would start max(cores, 4) threads; more threads than cores only
  // adds contention.
  auto n
    = threads > 0
        ? threads
        : static_cast<int>(std::max(2u, std::thread::hardware_concurrency()));
  cfg.set("scheduler.max-threads", n);
  // Work stealing unless told otherwise: coordinator and node processes
  // hold few actors. In-process simulations with large pools ask for work
  // sharing (`simulation_options::caf_policy`): a stealing thread takes the
  // *oldest* job of a victim's queue, and CAF 0.17.6's queue finds the new
  // tail by walking the list from its head with both locks held
  // (double_ended_queue::take_tail). When the scheduler hands work to
  // thousands of workers in one turn, that queue holds thousands of actors,
  // every steal is O(queue) and blocks the owner: at 100,000 workers perf
  // put half of all samples in take_tail and the run fell to ~5k tests/s.
  // Sharing costs a mutex per enqueue and stays flat (bench_e2e_throughput,
  // README "Scale").
  cfg.set("scheduler.policy",
          caf::atom_from_string(policy ? policy : "stealing"));
  // An idle CAF thread polls its queue 500 more times after a short spin,
  // sleeping 50 us between polls: each poll is a context switch, which on
  // a machine shared by several alb processes costs the others CPU. Past
  // the spin it waits on its condition variable instead, woken by the
  // next enqueue.
  cfg.set("work-stealing.moderate-poll-attempts", size_t{0});
  // A thread asleep on its condition variable is woken by the enqueuer,
  // and on a VM that wake-up (an interrupt to an idle vCPU) took p50
  // ~30 us and p99 0.2-0.8 ms (a bare hand-over between two threads,
  // README "Scale"): polling through the gaps between messages trades a
  // core for it.
  if (busy_poll_us > 0)
    cfg.set("work-stealing.aggressive-poll-attempts",
            busy_polls_for(busy_poll_us));
}

} // namespace alb
