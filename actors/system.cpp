#include "actors/system.hpp"

#include <algorithm>
#include <thread>

#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>

#include "actors/caf_ec.hpp"
#include "actors/messages.hpp"

namespace alb {

void configure_system(caf::actor_system_config& cfg, int threads,
                      bool deterministic) {
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
  // An idle CAF thread polls its queue 500 more times after a short spin,
  // sleeping 50 us between polls: each poll is a context switch, which on
  // a machine shared by several alb processes costs the others CPU. Past
  // the spin it waits on its condition variable instead, woken by the
  // next enqueue.
  cfg.set("work-stealing.moderate-poll-attempts", size_t{0});
}

} // namespace alb
