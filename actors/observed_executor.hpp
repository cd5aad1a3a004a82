#pragma once

// An executor that tells a run_observer about every start and end of the
// executor it wraps (private to actors/: the node's /metrics count what its
// real worker runs without the worker or the process executor knowing).

#include <memory>
#include <unordered_map>

#include "actors/executor.hpp"
#include "runtime/run_observer.hpp"

namespace alb {

/// Wraps `inner`, reporting each run's start and end to `obs`.
std::unique_ptr<executor> observe_runs(std::unique_ptr<executor> inner,
                                       std::shared_ptr<run_observer> obs);

} // namespace alb
