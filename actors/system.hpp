#pragma once

// Actor-system set-up shared by every alb process.

#include <cstddef>

#include <caf/fwd.hpp>

namespace alb {

/// Registers alb's message types and sets the thread count (0 = one per
/// core, at least 2 so a busy actor cannot starve the others) and CAF's
/// scheduler policy (`policy`: "stealing", the default, or "sharing"); with
/// `deterministic`, installs CAF's test coordinator (one thread, virtual
/// time) instead. With `busy_poll_us` > 0, an idle thread of the stealing
/// policy keeps polling its queue for about that many microseconds before
/// it sleeps (`busy_polls_for`), instead of CAF's short spin.
void configure_system(caf::actor_system_config& cfg, int threads,
                      bool deterministic, const char* policy = nullptr,
                      int busy_poll_us = 0);

/// Polls of an idle work-stealing thread that take about `us` microseconds:
/// CAF counts polls, not time, and one costs ~3.3 ns here (a 2-core AMD
/// EPYC VM; measured as the CPU an idle thread burns after a message).
size_t busy_polls_for(int us);

} // namespace alb
