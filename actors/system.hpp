#pragma once

// Actor-system set-up shared by every alb process.

#include <caf/fwd.hpp>

namespace alb {

/// Registers alb's message types and sets the thread count (0 = one per
/// core, at least 2 so a busy actor cannot starve the others) and CAF's
/// scheduler policy (`policy`: "stealing", the default, or "sharing"); with
/// `deterministic`, installs CAF's test coordinator (one thread, virtual
/// time) instead.
void configure_system(caf::actor_system_config& cfg, int threads,
                      bool deterministic, const char* policy = nullptr);

} // namespace alb
