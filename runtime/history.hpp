#pragma once

// Learned execution times per (model, worker), the memory of
// `performance_based` and `adaptive`. Kept in memory while a run learns, and
// in an embedded SQLite database between runs: `load` reads it at start,
// `save` replaces it at the end in one transaction, so an interrupted save
// leaves the previous contents intact and never a corrupt file.
//
// Usage:
//
//     auto h = std::make_shared<alb::execution_history>(
//       alb::execution_history::load("alb.db")); // throws history_error
//     cfg.scheduler.history = h;                 // strategies learn into it
//     ... run ...
//     h->save("alb.db");                         // throws history_error

#include <cstdint>
#include <stdexcept>
#include <string>
#include <unordered_map>

namespace alb {

/// The history database cannot be read or written. `what()` is one line
/// naming the file and the reason.
class history_error : public std::runtime_error {
public:
  /// Stores the one-line message.
  using std::runtime_error::runtime_error;
};

/// Running statistics of one series (Welford: count, mean, sum of squared
/// deviations), mergeable with another (Chan et al.).
struct running_stats {
  /// Samples seen.
  uint64_t count = 0;
  /// Their mean.
  double mean = 0;
  /// Sum of squared deviations from the mean.
  double m2 = 0;

  /// Adds one sample.
  void add(double x);

  /// Adds every sample `other` has seen.
  void merge(const running_stats& other);

  /// Sample variance (0 below two samples).
  double variance() const {
    return count > 1 ? m2 / static_cast<double>(count - 1) : 0;
  }
};

/// What is known about one model on one worker.
struct exec_stats {
  /// Execution times in seconds.
  running_stats seconds;
  /// Execution time divided by the test's expected duration (only tests
  /// that gave one): how much slower than nominal this worker runs this
  /// model, independent of each test's size.
  running_stats slowdown;

  /// Adds every sample of `other`.
  void merge(const exec_stats& other) {
    seconds.merge(other.seconds);
    slowdown.merge(other.slowdown);
  }
};

/// Everything learned about one worker.
struct worker_history {
  /// Per model id.
  std::unordered_map<std::string, exec_stats> by_model;
  /// Over all models: the worker's general pace.
  exec_stats overall;
};

/// Execution-time history per (model, worker). Not thread-safe: one
/// scheduler owns it during a run.
class execution_history {
public:
  /// Name of the table `save` writes and `load` reads.
  static constexpr const char* table = "execution_history";

  /// Records one finished attempt of `model` on `worker` that ran
  /// `exec_seconds`; `expected_seconds` (0 = unknown) is the test's own
  /// estimate at nominal speed.
  void record(const std::string& model, const std::string& worker,
              double exec_seconds, double expected_seconds);

  /// What is known about `worker` (null = nothing). The pointer stays valid
  /// until the history is destroyed or assigned.
  const worker_history* find_worker(const std::string& worker) const;

  /// What is known about `model` on `worker` (null = nothing).
  const exec_stats* find(const std::string& model,
                         const std::string& worker) const;

  /// Expected seconds of a test of `model` with `expected_seconds` (0 =
  /// unknown) on `worker`: learned slowdown of this model there, else of the
  /// worker in general, times `expected_seconds`; else the mean seconds
  /// seen; else `expected_seconds / fallback_speed`. `w` may be passed to
  /// skip the worker lookup.
  double estimate(const std::string& model, const worker_history* w,
                  double expected_seconds, double fallback_speed) const;

  /// Adds every sample of `other` (as prior knowledge: not part of
  /// `fresh()`).
  void merge(const execution_history& other);

  /// Only what `record` added since this history was made or loaded (a
  /// copy keeps its source's fresh part), so a caller can combine what
  /// several runs learned from one starting point without counting the
  /// starting point twice.
  execution_history fresh() const;

  /// (model, worker) pairs known.
  size_t size() const { return pairs_; }

  /// Whether nothing is known.
  bool empty() const { return pairs_ == 0; }

  /// Workers known.
  size_t workers() const { return workers_.size(); }

  /// Reads the history kept in the SQLite database at `path`; a missing
  /// file is an empty history (nothing is created). Throws history_error
  /// naming `path` when the file is unreadable, not a database, or holds a
  /// malformed table.
  static execution_history load(const std::string& path);

  /// Replaces the history in the database at `path` (created if missing)
  /// with this one, in one transaction: readers, and a save that is
  /// interrupted, see either the old or the new history. Leaves other
  /// tables alone. Throws history_error naming `path`.
  void save(const std::string& path) const;

private:
  static void add_to(std::unordered_map<std::string, worker_history>& map,
                     size_t& pairs, const std::string& model,
                     const std::string& worker, double exec_seconds,
                     double expected_seconds);

  std::unordered_map<std::string, worker_history> workers_;
  size_t pairs_ = 0;
  std::unordered_map<std::string, worker_history> fresh_;
  size_t fresh_pairs_ = 0;
};

} // namespace alb
