#pragma once

// A lower bound on the makespan of any schedule of a set of tests on a set
// of workers, the yardstick `alb benchmark` measures strategies against.
// Each test has a release time (when it is submitted), a least possible
// amount of work (its expected duration at nominal speed times the lowest
// factor the execution model can draw), a memory size and an accelerator
// count; each worker has independent slots that run at its speed. Every
// part is a necessary condition of a real schedule, so no strategy, not even
// an oracle that knows every draw, can finish sooner. Pure functions, no
// CAF.

#include <cstdint>
#include <utility>
#include <vector>

#include "runtime/model.hpp"

namespace alb {

/// A worker as the bound sees it.
struct bound_machine {
  /// Pace relative to nominal (a test of work w takes w / speed seconds).
  double speed = 1;
  /// Tests it runs at once, each at full speed.
  int slots = 1;
  /// Accelerator devices (a test needing g of them holds g while it runs).
  int accelerators = 0;
  /// Memory in GB shared by the tests it runs at once.
  double memory_gb = 0;
};

/// A test as the bound sees it.
struct bound_job {
  /// Seconds after the start at which it is submitted.
  double release = 0;
  /// Least possible seconds of work at nominal speed.
  double work = 0;
  /// Accelerator devices it needs (0 = none).
  int accelerators = 0;
  /// Memory in GB it holds while it runs.
  double memory_gb = 0;
};

/// The bound and the part that set it.
struct makespan_bound {
  /// The bound in seconds: max over release times r of r + the largest part
  /// for the tests released at or after r.
  double total = 0;
  /// The release time r at which the maximum is reached.
  double release = 0;
  /// (a) non-preemptive per-slot packing bound of the tests released at or
  /// after `release`.
  double packing = 0;
  /// (b) preemptive optimum on uniform machines of those tests.
  double preemptive = 0;
  /// (c) the larger of (a) and (b) for the accelerator tests on the slots
  /// that can hold one.
  double accelerator = 0;
  /// (d) memory-time: the tests' memory x work over the fleet's memory x
  /// speed.
  double memory = 0;
};

/// (b) The optimal preemptive makespan of jobs of the given works on
/// uniform machines of the given speeds, all released at once (Horvath, Lam
/// and Sethi 1977; Gonzalez and Sahni 1978): the maximum over k < m of the
/// k largest works over the k fastest speeds, and of all works over all
/// speeds. Either argument in any order; 0 without machines or work.
double preemptive_uniform_bound(std::vector<double> works,
                                std::vector<double> speeds);

/// (a) A non-preemptive bound on uniform machines: every job runs whole on
/// one slot, and a slot of speed s holds at most floor(s T / v) jobs of work
/// at least v within time T. Returns the least T for which, for every work
/// value v, the slots can hold the jobs of work >= v that way (slightly
/// below it, never above). At most `max_values` distinct values are tried
/// (evenly by rank; fewer only weakens the bound).
double packing_uniform_bound(std::vector<double> works,
                             std::vector<double> speeds,
                             size_t max_values = 256);

/// (d) Memory-time: on a machine the tests running at once share its
/// memory and progress at its speed, so the fleet completes at most
/// sum(memory x speed) GB x work per second.
double memory_time_bound(const std::vector<bound_job>& jobs,
                         const std::vector<bound_machine>& machines);

/// The bound of `jobs` on `machines` (see `makespan_bound`). At most
/// `max_releases` distinct release times are tried (evenly by rank, always
/// including the earliest; fewer only weakens the bound).
makespan_bound
compute_makespan_bound(std::vector<bound_job> jobs,
                       const std::vector<bound_machine>& machines,
                       size_t max_releases = 256);

/// The bound of running `tests` ((submission time, test), times relative
/// to any origin) on `workers`: a test's work is its expected duration
/// times `work_factor` (the lowest factor the execution model can draw), a
/// worker's slots are `max_concurrent_tests` or its cores, its accelerators
/// and a test's are counted over all types. Release times are taken
/// relative to the earliest, as makespan is measured from the first
/// submission.
makespan_bound
bound_of(const std::vector<worker_capabilities>& workers,
         const std::vector<std::pair<double, test_requirements>>& tests,
         double work_factor);

} // namespace alb
