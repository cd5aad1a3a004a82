#pragma once

// Learned execution times per (model, worker), the memory of
// `performance_based` and `adaptive`, with what each model's family and each
// worker in general have shown, so a model a worker has not run yet starts
// from its family's pace there, else the worker's. Kept in memory while a run
// learns, and in an embedded SQLite database between runs: `load` reads it at
// start, `save` replaces it at the end in one transaction, so an interrupted
// save leaves the previous contents intact and never a corrupt file.
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
  /// Per model family (the models whose family is known).
  std::unordered_map<std::string, exec_stats> by_family;
  /// Over all models: the worker's general pace.
  exec_stats overall;
};

/// What a run of one test is expected to take: the mean and the standard
/// deviation of one run around it (0 while fewer than two samples say).
struct run_estimate {
  /// Expected seconds.
  double mean = 0;
  /// Standard deviation of one run, seconds.
  double sd = 0;

  /// `mean + k * sd`: a pessimistic estimate for `k > 0`.
  double upper(double k) const { return mean + k * sd; }
};

/// Execution-time history per (model, worker). Not thread-safe: one
/// scheduler owns it during a run.
class execution_history {
public:
  /// Name of the table `save` writes and `load` reads.
  static constexpr const char* table = "execution_history";

  /// Name of the table of model families `save` writes and `load` reads
  /// (model, family); a database without it has no families.
  static constexpr const char* family_table = "execution_history_family";

  /// A learned level (model, family) is drawn towards the level above it
  /// (family, the worker overall) as if that had this many samples of its
  /// own: a few jittered runs of a model do not override what many runs of
  /// its family or of the worker said, ten runs weigh as much as it (alb
  /// benchmark over 30 seeds on 30acd03: 2 and 5 left more bad outliers
  /// than 10).
  static constexpr double prior_samples = 10;

  /// Records one finished attempt of `model` (of `family`, "" = none) on
  /// `worker` that ran `exec_seconds`; `expected_seconds` (0 = unknown) is
  /// the test's own estimate at nominal speed.
  void record(const std::string& model, const std::string& worker,
              double exec_seconds, double expected_seconds,
              const std::string& family = {});

  /// The family `model` was recorded with ("" = unknown).
  const std::string& family_of(const std::string& model) const;

  /// What is known about `worker` (null = nothing). The pointer stays valid
  /// until the history is destroyed or assigned.
  const worker_history* find_worker(const std::string& worker) const;

  /// What is known about `model` on `worker` (null = nothing).
  const exec_stats* find(const std::string& model,
                         const std::string& worker) const;

  /// Expected seconds of a test of `model` (of `family`; "" = the family
  /// it was recorded with) with `expected_seconds` (0 = unknown) on the
  /// worker `w` (null = unknown): `expected_seconds` times the learned
  /// slowdown there, the model's mean drawn towards its family's and the
  /// family's towards the worker's overall one (each level weighs as
  /// `prior_samples` samples of its own; a level without samples is the
  /// one above it); a worker without samples runs at `fallback_speed`.
  /// Without `expected_seconds`, the same over the mean seconds seen.
  double estimate(const std::string& model, const worker_history* w,
                  double expected_seconds, double fallback_speed,
                  const std::string& family = {}) const {
    return estimate_run(model, w, expected_seconds, fallback_speed, family)
      .mean;
  }

  /// `estimate` with the standard deviation of one run: that of the
  /// deepest level (model, family, overall) with at least two samples,
  /// scaled like the mean; 0 when none has.
  run_estimate estimate_run(const std::string& model, const worker_history* w,
                            double expected_seconds, double fallback_speed,
                            const std::string& family = {}) const;

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
  /// The entries the last `record` added to, by key: completions come in
  /// batches from one worker, mostly of a few models, and comparing a key
  /// costs less than hashing it three times per map (callgrind: `record`
  /// was 8.5% of a 1,000-worker run). Entries are never erased, so the
  /// pointers stay valid; a copied or assigned history starts without.
  struct add_cache {
    /// Worker, model and family of the entries below.
    std::string worker, model, family;
    /// The worker's entry (null = none cached).
    worker_history* w = nullptr;
    /// The model's entry in `w` (null = none cached).
    exec_stats* m = nullptr;
    /// The family's entry in `w` (null = none cached).
    exec_stats* f = nullptr;
    /// Empty.
    add_cache() = default;
    /// Empty: `o`'s pointers point into another history.
    add_cache(const add_cache&) {}
    /// Empty, as above.
    add_cache& operator=(const add_cache&) {
      w = nullptr;
      m = f = nullptr;
      return *this;
    }
  };

  static void add_to(std::unordered_map<std::string, worker_history>& map,
                     size_t& pairs, add_cache& cache, const std::string& model,
                     const std::string& family, const std::string& worker,
                     double exec_seconds, double expected_seconds);

  /// Adds `s` (samples of `model`) to the family aggregates of `w`.
  void add_family(worker_history& w, const std::string& model,
                  const exec_stats& s) const;

  std::unordered_map<std::string, worker_history> workers_;
  size_t pairs_ = 0;
  std::unordered_map<std::string, worker_history> fresh_;
  size_t fresh_pairs_ = 0;
  add_cache workers_cache_;
  add_cache fresh_cache_;
  /// Model id -> family, for the models recorded with one.
  std::unordered_map<std::string, std::string> families_;
};

} // namespace alb
