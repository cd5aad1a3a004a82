// The learned and combined strategies: weighted_round_robin,
// performance_based, priority_based, affinity_based, adaptive, composite and
// the per-test-type dispatcher. None scans every worker per decision: they
// use the capacity index (O(log n) per query), a bounded number of queries
// (one per speed tier) and bounded incremental upkeep.

#include "runtime/history.hpp"
#include "runtime/rng.hpp"
#include "runtime/strategies_internal.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace alb::detail {

namespace {

constexpr auto npos = capacity_index::npos;

// -- pace model ---------------------------------------------------------------

/// How many standard deviations of one run the plan adds to a learned
/// duration where it decides whether to hold a test back for a faster
/// worker (k in mean + k sd): a hold is a bet on estimates, so both sides
/// are planned slower than their mean. 0.5 (about the 69th percentile of a
/// normal spread): in alb benchmark over 30 seeds (on 30acd03, before
/// priority bands could be jumped) 1 left a bad outlier (50 x 100 warm
/// worst 1.72) that 0.5 and 0 did not, and 0.5 had the lowest warm sum;
/// the differences between 0, 0.5 and 1 were otherwise within the spread
/// any small change of the plan gives.
constexpr double pessimism_sd = 0.5;

/// How fast each worker runs tests, learned from the execution history (or
/// a prior until the history knows it), and workers grouped into speed
/// tiers so "the least loaded worker of each tier" is a bounded number of
/// index queries.
class pace_model {
public:
  /// Quarter-octave tiers from 1/256 to 256 times nominal speed.
  static constexpr int tiers = 64;

  /// A test is short enough to probe an unknown worker with when its
  /// expected duration is at most this share of the mean test's.
  static constexpr double probe_share = 0.5;

  pace_model(execution_history* shared, bool speed_hints)
    : shared_(shared), hints_(speed_hints) {
    // nop
  }

  execution_history& history() { return shared_ ? *shared_ : own_; }

  /// Records a finished attempt and refreshes what is known of its worker.
  void learn(const test_record& t, uint32_t slot, const cluster_state& c,
             double exec_seconds) {
    auto& caps = c.worker(slot).caps;
    history().record(t.req.model_id, caps.worker_id, exec_seconds,
                     t.req.expected_duration, t.req.model_family);
    refresh(slot, c);
  }

  /// The worker in `slot` left; its slot will be reused.
  void forget(uint32_t slot) {
    if (slot < slots_.size() && slots_[slot].known) {
      untier(slots_[slot]);
      unclass(slots_[slot]);
      slots_[slot] = entry{};
    }
  }

  /// Seconds the work still to do lasts if the fleet shares it evenly: the
  /// waiting tests' expected work (queued and parked) and half of the
  /// placed tests' (on average half done) over the fleet's combined speed;
  /// for a test that needs an accelerator at least as long as the work of
  /// such tests lasts on the slots that can have one. Infinity while no
  /// worker is known.
  double remaining_time(const test_record& t, const cluster_state& c) const {
    if (rate_ <= 0)
      return std::numeric_limits<double>::infinity();
    auto all
      = (c.queued_work() + c.parked_work() + 0.5 * c.placed_work()) / rate_;
    auto a = first_accel(t);
    if (a < 0)
      return all;
    auto rate = accel_rate_[static_cast<size_t>(a)];
    if (rate <= 0)
      return std::numeric_limits<double>::infinity();
    return std::max(all, (c.queued_accel_work() + 0.5 * c.placed_accel_work())
                           / rate);
  }

  /// Whether the accelerator tests are what the run waits for: for some
  /// accelerator type, the work waiting for it over its devices' rate is
  /// at least `share` of all waiting work over the fleet's rate. Only then
  /// is a slot next to a free device worth keeping from a CPU test.
  bool accelerators_critical(const cluster_state& c, double share) const {
    if (rate_ <= 0)
      return false;
    auto accel = c.queued_accel_work() + 0.5 * c.placed_accel_work();
    if (!(accel > 0))
      return false;
    auto all
      = (c.queued_work() + c.parked_work() + 0.5 * c.placed_work()) / rate_;
    for (auto rate : accel_rate_)
      if (rate > 0 && accel / rate >= share * all)
        return true;
    return false;
  }

  /// The first accelerator type `t` needs, or -1.
  static int first_accel(const test_record& t) {
    for (int a = 0; a < max_accel_types; ++a)
      if (t.need.accel[a] > 0)
        return a;
    return -1;
  }

  /// Estimated speed of the worker in `slot` (1 = nominal).
  double speed(uint32_t slot, const cluster_state& c) {
    return at(slot, c).speed;
  }

  /// Speed tier of the worker in `slot`.
  int tier(uint32_t slot, const cluster_state& c) { return at(slot, c).tier; }

  /// What the history knows of the worker in `slot` (may be null).
  const worker_history* known(uint32_t slot, const cluster_state& c) {
    return at(slot, c).hist;
  }

  /// Expected seconds `t` runs on the worker in `slot`.
  double exec_estimate(const test_record& t, uint32_t slot,
                       const cluster_state& c) {
    return exec_run(t, slot, c).mean;
  }

  /// Expected seconds `t` runs on the worker in `slot`, with the spread of
  /// one run.
  run_estimate exec_run(const test_record& t, uint32_t slot,
                        const cluster_state& c) {
    auto& e = at(slot, c);
    return history().estimate_run(t.req.model_id, e.hist, typical(t),
                                  e.fallback, t.req.model_family);
  }

  /// Expected seconds of `t` at nominal speed (its own estimate, else the
  /// running mean of the tests seen).
  double typical(const test_record& t) const {
    return t.req.expected_duration > 0 ? t.req.expected_duration
                                       : mean_expected_;
  }

  /// Expected seconds until `t` would finish on the worker in `slot`: the
  /// wait behind the tests it already holds beyond its free slots, plus
  /// its own run (`k` standard deviations of one run above its mean),
  /// slowed by load that is not ours.
  double completion(const test_record& t, uint32_t slot, const cluster_state& c,
                    double k = 0) {
    auto& w = c.worker(slot);
    auto held = static_cast<double>(w.held.size());
    auto slots = static_cast<double>(std::max(1, w.slots));
    double wait = 0;
    if (held >= slots)
      wait = (held - slots + 1) / slots * mean_expected_ / speed(slot, c);
    auto run
      = k > 0 ? exec_run(t, slot, c).upper(k) : exec_estimate(t, slot, c);
    return (wait + run) * (1.0 + w.external_load);
  }

  /// Whether `t` is short enough to be an unknown worker's probe.
  bool is_probe(const test_record& t) const {
    return t.req.expected_duration > 0
           && cluster_state::size_class_of(t.req.expected_duration)
                <= probe_class();
  }

  /// Queued tests short enough to probe with.
  size_t probes_queued(const cluster_state& c) const {
    return c.queued_at_least(1) - c.queued_at_least(probe_class() + 1);
  }

  /// Whether the worker in `slot` still waits for its probe: nothing
  /// learned of it, no prior that says anything, no test given yet.
  bool unprobed(uint32_t slot, const cluster_state& c) {
    auto& e = at(slot, c);
    return !e.hist && !e.declared && !e.probed;
  }

  /// Whether some known worker waits for its probe (O(1)).
  bool any_unprobed() const { return !unprobed_.empty(); }

  /// A worker waiting for its probe that can take `t` in a free slot now,
  /// or npos; looks at a bounded number of them.
  uint32_t free_unprobed(const test_record& t, const cluster_state& c) {
    eligible_for ok{t, c};
    size_t looked = 0;
    for (size_t i = 0; i < unprobed_.size() && looked < 32;) {
      auto slot = unprobed_[i];
      if (slot >= slots_.size() || !slots_[slot].known || !unprobed(slot, c)) {
        if (slot < slots_.size())
          slots_[slot].listed = false;
        unprobed_[i] = unprobed_.back();
        unprobed_.pop_back();
        continue;
      }
      ++looked;
      ++i;
      auto& w = c.worker(slot);
      if (static_cast<int>(w.held.size()) < w.slots && c.fits_now(slot, t)
          && ok(slot))
        return slot;
    }
    return npos;
  }

  /// The worker in `slot` got its first test: it is no longer waiting for
  /// a probe.
  void probed(uint32_t slot, const cluster_state& c) {
    at(slot, c).probed = true;
  }

  /// While set, `least_loaded_in_tier` passes over workers waiting for
  /// their probe.
  bool skip_unprobed = false;

  /// While set, `least_loaded_in_tier` passes over workers whose free
  /// test slots are all needed by their free accelerators (see
  /// `leaves_accelerators_room`).
  bool spare_accelerators = false;

  /// Whether a test that needs no accelerator may take a test slot of the
  /// worker in `slot` while accelerator tests wait: only when more slots
  /// are free there than accelerator devices, else the slot it takes is
  /// one an accelerator test could have used (a 4-slot, 4-GPU worker
  /// filled with long CPU tests idles its GPUs while GPU tests queue).
  static bool leaves_accelerators_room(uint32_t slot, const cluster_state& c) {
    auto& leaf = c.index().leaf(slot);
    int devices = 0;
    for (auto n : leaf.free_accel)
      devices += std::max<int>(0, n);
    return devices == 0 || leaf.free_slots > devices;
  }

  /// Call once per decision: keeps tier counts converging on new workers
  /// (a bounded sweep, never all of them at once) and tracks test sizes.
  void observe(const test_record& t, const cluster_state& c) {
    if (t.req.expected_duration > 0) {
      ++sizes_;
      mean_expected_ += (t.req.expected_duration - mean_expected_)
                        / static_cast<double>(std::min<uint64_t>(sizes_, 1000));
    }
    sweep(c);
  }

  /// The bounded sweep of `observe` alone (no test seen).
  void sweep(const cluster_state& c) {
    auto& live = c.live_workers();
    if (live.empty())
      return;
    // More upkeep right after the worker set changed, so a fresh cluster
    // is fully tiered after a few decisions.
    size_t budget = live.size() != last_live_ ? 256 : 8;
    last_live_ = live.size();
    budget = std::min(budget, live.size());
    for (size_t i = 0; i < budget; ++i) {
      if (sweep_ >= live.size())
        sweep_ = 0;
      at(live[sweep_++], c);
    }
  }

  /// Non-empty tiers, fastest first.
  template<class F>
  void for_tiers_fastest_first(F&& f) const {
    for (int k = tiers - 1; k >= 0; --k)
      if (count_[static_cast<size_t>(k)] > 0)
        if (!f(k))
          return;
  }

  /// Upper bound of the speeds in tier `k`.
  static double tier_top(int k) {
    return std::exp2(static_cast<double>(k - tiers / 2 + 1) / 4.0);
  }

  /// Ratio of the fastest to the slowest known tier (1 = uniform).
  double spread() const {
    int lo = -1;
    int hi = -1;
    for (int k = 0; k < tiers; ++k) {
      if (count_[static_cast<size_t>(k)] == 0)
        continue;
      if (lo < 0)
        lo = k;
      hi = k;
    }
    return lo < 0 ? 1.0 : std::exp2(static_cast<double>(hi - lo) / 4.0);
  }

  /// Expected seconds until `t` would finish on some worker faster than
  /// tier `k` if it waited for one: the faster tiers' slots that can hold
  /// it (its accelerators counted, not only test slots) free up at their
  /// combined rate, the `waiting` tests ahead of it (as long or longer)
  /// drain first, then it runs at their mean speed, `sds` standard
  /// deviations of one run slower (their mean spread). Infinity when no
  /// tier is faster.
  double faster_completion(const test_record& t, int k, size_t waiting,
                           double sds = 0) const {
    double rate = 0; // nominal seconds of work per second
    double slots = 0;
    double spread = 0; // sum of slots x relative sd
    for (int j = k + 1; j < tiers; ++j) {
      auto n = static_cast<double>(tier_slots_[static_cast<size_t>(j)]);
      if (n <= 0)
        continue;
      auto speed = tier_rate_[static_cast<size_t>(j)] / n;
      for (int a = 0; a < max_accel_types; ++a)
        if (t.need.accel[a] > 0)
          n = std::min(
            n, static_cast<double>(
                 tier_accel_[static_cast<size_t>(a)][static_cast<size_t>(j)])
                 / t.need.accel[a]);
      if (n <= 0)
        continue;
      rate += n * speed;
      slots += n;
      spread += n * tier_cv_[static_cast<size_t>(j)]
                / static_cast<double>(tier_slots_[static_cast<size_t>(j)]);
    }
    if (rate <= 0)
      return std::numeric_limits<double>::infinity();
    auto speed = rate / slots;
    // A slot frees after about a mean test's share; each test ahead is at
    // least about as long as this one.
    auto drain
      = (mean_expected_ + static_cast<double>(waiting) * typical(t)) / rate;
    return drain + typical(t) / speed * (1 + sds * spread / slots);
  }

private:
  struct entry {
    bool known = false;
    /// Whether its prior says something (speed hint, a learned worker of
    /// the same hardware, a declared clock): then it is not probed.
    bool declared = false;
    /// Whether it was given a test while nothing was known of it.
    bool probed = false;
    /// Whether it is in `unprobed_`.
    bool listed = false;
    /// Whether its learned speed counts in its hardware class.
    bool in_class = false;
    int8_t tier = 0;
    double speed = 1;
    double fallback = 1;
    /// Standard deviation of its learned slowdown over its mean (0 until
    /// two samples): the relative spread of one run.
    double cv = 0;
    int slots = 1;
    /// Per accelerator type, the test slots that can have one.
    std::array<int, max_accel_types> accel{};
    const worker_history* hist = nullptr;
    /// Its hardware class and that class's version its prior was taken at.
    uint32_t cls = 0;
    uint64_t cls_version = 0;
  };

  /// Workers declaring the same hardware: their learned speeds.
  struct hardware_class {
    double speed_sum = 0;
    uint32_t known = 0;
    /// Bumped whenever `speed_sum` changes.
    uint64_t version = 0;
  };

  /// The class of a worker's declared hardware: CPU cores and clock, GPUs
  /// and whether CUDA is usable.
  static std::string hardware_key(const worker_capabilities& caps) {
    auto& h = caps.hardware;
    return std::to_string(h.cpu.cores) + "/"
           + std::to_string(std::llround(h.cpu.frequency_mhz)) + "/"
           + std::to_string(h.gpu.device_count) + "/"
           + (h.gpu.cuda_available ? "cuda" : "");
  }

  uint32_t class_of(const worker_capabilities& caps) {
    auto [it, fresh] = class_ids_.try_emplace(
      hardware_key(caps), static_cast<uint32_t>(classes_.size()));
    if (fresh)
      classes_.emplace_back();
    return it->second;
  }

  /// What a worker the history does not know yet is assumed to run at:
  /// its advertised speed with speed hints; else the mean learned speed of
  /// the workers that declare the same hardware (cores, clock, GPUs); else
  /// what its declared clock says (against a nominal 3 GHz, within
  /// 1/4..4x); else nominal. `declared` tells whether any of these said
  /// something.
  double prior_speed(const worker_capabilities& caps, uint32_t cls,
                     bool& declared) const {
    declared = true;
    if (hints_ && caps.speed > 0)
      return caps.speed;
    auto& k = classes_[cls];
    if (k.known > 0)
      return k.speed_sum / k.known;
    auto mhz = caps.hardware.cpu.frequency_mhz;
    if (mhz > 0)
      return std::clamp(mhz / nominal_mhz, 0.25, 4.0);
    declared = false;
    return 1.0;
  }

  /// The largest size class of a probe.
  int probe_class() const {
    return cluster_state::size_class_of(probe_share * mean_expected_);
  }

  void unclass(entry& e) {
    if (!e.in_class)
      return;
    auto& k = classes_[e.cls];
    k.speed_sum -= e.speed;
    --k.known;
    ++k.version;
    e.in_class = false;
  }

  /// The clock of a nominal-speed worker.
  static constexpr double nominal_mhz = 3000;

  static int tier_of(double speed) {
    auto k = static_cast<int>(std::floor(std::log2(speed) * 4.0)) + tiers / 2;
    return std::clamp(k, 0, tiers - 1);
  }

  entry& at(uint32_t slot, const cluster_state& c) {
    if (slot >= slots_.size())
      slots_.resize(static_cast<size_t>(slot) + 1);
    auto& e = slots_[slot];
    // A worker still on its prior takes up what its hardware class learned
    // since.
    if (!e.known
        || (!e.hist && !e.in_class && classes_[e.cls].version != e.cls_version))
      refresh(slot, c);
    return e;
  }

  void refresh(uint32_t slot, const cluster_state& c) {
    if (slot >= slots_.size())
      slots_.resize(static_cast<size_t>(slot) + 1);
    auto& e = slots_[slot];
    if (e.known)
      untier(e);
    unclass(e);
    auto& w = c.worker(slot);
    auto& caps = w.caps;
    e.slots = std::max(1, w.slots);
    for (int a = 0; a < max_accel_types; ++a)
      e.accel[static_cast<size_t>(a)]
        = std::min(e.slots, static_cast<int>(w.total_accel[a]));
    // The class of a worker does not change while it stays (a worker that
    // leaves is forgotten, its entry reset).
    if (!e.known)
      e.cls = class_of(caps);
    e.cls_version = classes_[e.cls].version;
    e.fallback = prior_speed(caps, e.cls, e.declared);
    e.hist = history().find_worker(caps.worker_id);
    e.speed = e.fallback;
    e.cv = 0;
    if (e.hist && e.hist->overall.slowdown.count > 0
        && e.hist->overall.slowdown.mean > 0) {
      auto& r = e.hist->overall.slowdown;
      e.speed = 1.0 / r.mean;
      e.cv = std::sqrt(r.variance()) / r.mean;
      auto& k = classes_[e.cls];
      k.speed_sum += e.speed;
      ++k.known;
      ++k.version;
      e.in_class = true;
    }
    e.tier = static_cast<int8_t>(tier_of(e.speed));
    e.known = true;
    add_to_tier(e, +1);
    if (!e.hist && !e.declared && !e.probed && !e.listed) {
      e.listed = true;
      unprobed_.push_back(slot);
    }
  }

  /// Adds (+1) or removes (-1) the worker of `e` from its tier's sums.
  void add_to_tier(const entry& e, int sign) {
    auto k = static_cast<size_t>(e.tier);
    count_[k] = static_cast<uint32_t>(static_cast<int64_t>(count_[k]) + sign);
    tier_slots_[k] += sign * e.slots;
    tier_rate_[k] += sign * e.slots * e.speed;
    tier_cv_[k] += sign * e.slots * e.cv;
    for (size_t a = 0; a < e.accel.size(); ++a) {
      tier_accel_[a][k] += sign * e.accel[a];
      accel_rate_[a] += sign * e.accel[a] * e.speed;
    }
    rate_ += sign * e.slots * e.speed;
  }

  void untier(const entry& e) { add_to_tier(e, -1); }

  execution_history* shared_;
  execution_history own_;
  bool hints_;
  std::vector<entry> slots_;
  std::array<uint32_t, tiers> count_{};
  std::array<int64_t, tiers> tier_slots_{};
  /// Per tier, the sum of slots x speed.
  std::array<double, tiers> tier_rate_{};
  /// Per tier, the sum of slots x relative spread of one run.
  std::array<double, tiers> tier_cv_{};
  /// Hardware classes by key, and their learned speeds.
  std::unordered_map<std::string, uint32_t> class_ids_;
  std::vector<hardware_class> classes_;
  /// Workers that may still wait for their probe (some entries stale).
  std::vector<uint32_t> unprobed_;
  /// Per accelerator type and tier, the slots that can have one.
  std::array<std::array<int64_t, tiers>, max_accel_types> tier_accel_{};
  /// Per accelerator type, the sum of slots that can have one x speed.
  std::array<double, max_accel_types> accel_rate_{};
  size_t sweep_ = 0;
  size_t last_live_ = 0;
  double mean_expected_ = 1.0;
  uint64_t sizes_ = 0;
  /// Sum of slots x speed over the known workers.
  double rate_ = 0;
};

using pace_ptr = std::shared_ptr<pace_model>;

/// Speculation: the least loaded worker of the fastest tier with one that
/// can take `t` now, other than `avoid`, or npos.
uint32_t fastest_free(const test_record& t, const cluster_state& c,
                      pace_model& pm, uint32_t avoid) {
  // Workers that joined since the last decision get their tiers first.
  pm.sweep(c);
  eligible_for ok{t, c};
  auto best = npos;
  pm.for_tiers_fastest_first([&](int k) {
    best = c.index().least_loaded(t.need, [&](uint32_t slot) {
      return slot != avoid && pm.tier(slot, c) == k && ok(slot);
    });
    return best == npos;
  });
  return best;
}

/// Least loaded fitting worker of speed tier `k`, or npos.
uint32_t least_loaded_in_tier(const test_record& t, const cluster_state& c,
                              pace_model& pm, int k) {
  eligible_for ok{t, c};
  return c.index().least_loaded(t.need, [&](uint32_t slot) {
    return pm.tier(slot, c) == k && ok(slot)
           && !(pm.skip_unprobed && pm.unprobed(slot, c))
           && !(pm.spare_accelerators
                && !pace_model::leaves_accelerators_room(slot, c));
  });
}

// -- weighted_round_robin -----------------------------------------------------

/// Round robin in slot order where each worker, when its turn comes, gets as
/// many consecutive tests as it has free room (free test slots, local queue
/// included): weights follow free capacity, and a full worker is skipped.
class weighted_round_robin final : public strategy {
public:
  std::string_view name() const override { return "weighted_round_robin"; }

  uint32_t pick(const test_record& t, const cluster_state& c) override {
    if (cur_ != npos && credits_ > 0 && c.fits_now(cur_, t)) {
      --credits_;
      return cur_;
    }
    auto slot = c.index().first_from(next_, t.need, eligible_for{t, c});
    if (slot == npos)
      return npos;
    auto& w = c.worker(slot);
    cur_ = slot;
    next_ = slot + 1;
    credits_ = std::max(1, w.capacity - static_cast<int>(w.held.size())) - 1;
    return slot;
  }

  void on_worker_removed(uint32_t slot) override {
    if (slot == cur_) {
      cur_ = npos;
      credits_ = 0;
    }
  }

private:
  uint32_t next_ = 0;
  uint32_t cur_ = npos;
  int credits_ = 0;
};

// -- paced strategies ---------------------------------------------------------

/// A strategy that learns paces: speculation asks it how long a test runs
/// on a worker and where a copy of it should go.
class paced_strategy : public strategy {
public:
  double expected_seconds(const test_record& t, uint32_t slot,
                          const cluster_state& c) override {
    return pm_->exec_estimate(t, slot, c);
  }

  uint32_t pick_copy(const test_record& t, const cluster_state& c,
                     uint32_t avoid) override {
    return fastest_free(t, c, *pm_, avoid);
  }

protected:
  explicit paced_strategy(pace_ptr pm) : pm_(std::move(pm)) {
    // nop
  }

  /// The paces it learns (shared with the strategies it delegates to).
  pace_ptr pm_;
};

// -- performance_based --------------------------------------------------------

/// Earliest expected completion: for each speed tier (fastest first) the
/// least loaded fitting worker is a candidate, scored by the wait behind
/// what it holds plus the learned run time of this model there. Tiers whose
/// best possible run time cannot beat the best score are not queried.
class performance_based final : public paced_strategy {
public:
  performance_based(pace_ptr pm, bool learn)
    : paced_strategy(std::move(pm)), learn_(learn) {
    // nop
  }

  std::string_view name() const override { return "performance_based"; }

  uint32_t pick(const test_record& t, const cluster_state& c) override {
    if (learn_)
      pm_->observe(t, c);
    auto best = npos;
    auto best_score = std::numeric_limits<double>::infinity();
    auto nominal = pm_->typical(t);
    pm_->for_tiers_fastest_first([&](int k) {
      // Nothing in this tier or slower can finish sooner than this.
      if (nominal / pace_model::tier_top(k) >= best_score)
        return false;
      auto slot = least_loaded_in_tier(t, c, *pm_, k);
      if (slot == npos)
        return true;
      auto score = pm_->completion(t, slot, c);
      if (score < best_score) {
        best_score = score;
        best = slot;
      }
      return true;
    });
    // Tier counts may not have caught up with a worker that just joined;
    // the index still knows every worker.
    if (best == npos)
      best = c.index().least_loaded(t.need, eligible_for{t, c});
    return best;
  }

  void on_result(const test_record& t, uint32_t slot, const cluster_state& c,
                 double exec_seconds, bool /*success*/) override {
    if (learn_)
      pm_->learn(t, slot, c, exec_seconds);
  }

  void on_worker_removed(uint32_t slot) override {
    if (learn_)
      pm_->forget(slot);
  }

private:
  bool learn_;
};

// -- priority_based -----------------------------------------------------------

/// Urgent tests (priority 1-2) go to the fastest tier with a fitting worker,
/// preferring one that can start them at once; normal ones (3) to the least
/// loaded worker; background ones (4-5) are spread round robin so they do
/// not crowd the fast workers.
class priority_based final : public strategy {
public:
  priority_based(pace_ptr pm, bool learn) : pm_(std::move(pm)), learn_(learn) {
    // nop
  }

  std::string_view name() const override { return "priority_based"; }

  uint32_t pick(const test_record& t, const cluster_state& c) override {
    if (learn_)
      pm_->observe(t, c);
    eligible_for ok{t, c};
    if (t.req.priority <= 2) {
      auto first = npos;
      auto chosen = npos;
      pm_->for_tiers_fastest_first([&](int k) {
        auto slot = least_loaded_in_tier(t, c, *pm_, k);
        if (slot == npos)
          return true;
        if (first == npos)
          first = slot;
        auto& w = c.worker(slot);
        if (static_cast<int>(w.held.size()) < w.slots) {
          chosen = slot;
          return false;
        }
        return true;
      });
      if (chosen == npos)
        chosen = first;
      if (chosen != npos)
        return chosen;
      return c.index().least_loaded(t.need, ok);
    }
    if (t.req.priority == 3)
      return c.index().least_loaded(t.need, ok);
    auto slot = c.index().first_from(next_, t.need, ok);
    if (slot != npos)
      next_ = slot + 1;
    return slot;
  }

  void on_result(const test_record& t, uint32_t slot, const cluster_state& c,
                 double exec_seconds, bool /*success*/) override {
    if (learn_)
      pm_->learn(t, slot, c, exec_seconds);
  }

  void on_worker_removed(uint32_t slot) override {
    if (learn_)
      pm_->forget(slot);
  }

private:
  pace_ptr pm_;
  bool learn_;
  uint32_t next_ = 0;
};

// -- affinity_based -----------------------------------------------------------

/// Sends a test back to the worker that last took the same model (else the
/// same model family) when that worker can start it at once: warm caches,
/// loaded weights. Otherwise the least loaded fitting worker, which then
/// becomes the model's home.
class affinity_based final : public strategy {
public:
  std::string_view name() const override { return "affinity_based"; }

  /// The affine worker with room for `t`, or npos.
  uint32_t affine(const test_record& t, const cluster_state& c) const {
    for (auto* key : {&t.req.model_id, &t.req.model_family}) {
      if (key->empty())
        continue;
      auto& map = key == &t.req.model_id ? by_model_ : by_family_;
      auto it = map.find(*key);
      if (it == map.end())
        continue;
      auto [slot, gen] = it->second;
      if (slot >= gens_.size() || gens_[slot] != gen)
        continue; // the worker left; the slot may hold another one
      auto& w = c.worker(slot);
      if (c.fits_now(slot, t) && static_cast<int>(w.held.size()) < w.slots)
        return slot;
    }
    return npos;
  }

  /// Proposes a worker without remembering it.
  uint32_t propose(const test_record& t, const cluster_state& c) const {
    auto slot = affine(t, c);
    if (slot != npos)
      return slot;
    return c.index().least_loaded(t.need, eligible_for{t, c});
  }

  /// Makes `slot` the home of `t`'s model and family.
  void remember(const test_record& t, uint32_t slot) {
    if (slot == npos)
      return;
    if (slot >= gens_.size())
      gens_.resize(static_cast<size_t>(slot) + 1, 0);
    auto home = std::make_pair(slot, gens_[slot]);
    if (!t.req.model_id.empty())
      by_model_[t.req.model_id] = home;
    if (!t.req.model_family.empty())
      by_family_[t.req.model_family] = home;
  }

  uint32_t pick(const test_record& t, const cluster_state& c) override {
    auto slot = propose(t, c);
    remember(t, slot);
    return slot;
  }

  void on_result(const test_record& t, uint32_t slot, const cluster_state&,
                 double, bool success) override {
    if (success)
      remember(t, slot);
  }

  void on_worker_removed(uint32_t slot) override {
    // Bumping the slot's generation invalidates every home pointing at it
    // in O(1), without searching the maps.
    if (slot >= gens_.size())
      gens_.resize(static_cast<size_t>(slot) + 1, 0);
    ++gens_[slot];
  }

private:
  using home = std::pair<uint32_t, uint32_t>;
  std::unordered_map<std::string, home> by_model_;
  std::unordered_map<std::string, home> by_family_;
  std::vector<uint32_t> gens_;
};

// -- affinity against speed ---------------------------------------------------

/// Affinity never outweighs a 2x speed difference: `best` (the worker
/// performance_based chose for `t`; when that is `home`, the fastest other
/// free one) when it is expected to finish `t` in less than half the time
/// its affine worker `home` would, else npos.
uint32_t twice_as_fast(const test_record& t, const cluster_state& c,
                       pace_model& pm, uint32_t best, uint32_t home) {
  if (best == npos || best == home)
    best = fastest_free(t, c, pm, home);
  if (best == npos)
    return npos;
  return pm.completion(t, best, c) < 0.5 * pm.completion(t, home, c) ? best
                                                                     : npos;
}

// -- adaptive -----------------------------------------------------------------

/// Chooses a strategy per decision from the state of the cluster:
/// - workers of different speeds (learned or advertised): performance_based,
///   since earliest completion is what shortens the run;
/// - every worker at least 75% loaded (up to 1,024 workers): best_fit,
///   packing tight so the room left stays usable for large tests;
/// - a lightly loaded cluster (some worker below 50%) where the model's
///   previous worker can start the test at once: affinity_based;
/// - huge uniform pools (4,096 workers or more): power_of_two, O(1);
/// - otherwise least_loaded.
/// Affinity never outweighs a 2x speed difference: a home worker expected
/// to take more than twice as long as the earliest-finishing one loses to
/// it. A worker nothing is known of (no history, no prior that says
/// anything) gets a short test first when one is queued ("probe"), so its
/// pace is learned early.
/// `last_choice()` names the strategy that decided.
class adaptive final : public paced_strategy {
public:
  explicit adaptive(const strategy_context& ctx)
    : paced_strategy(
      std::make_shared<pace_model>(ctx.history, ctx.speed_hints)),
      perf_(pm_, false), least_(make_basic_strategy("least_loaded", ctx.seed)),
      p2_(make_basic_strategy("power_of_two", ctx.seed)),
      best_fit_(make_basic_strategy("best_fit", ctx.seed)) {
    // nop
  }

  std::string_view name() const override { return "adaptive"; }

  std::string_view last_choice() const override { return last_; }

  bool longest_first() const override { return true; }

  bool deferred() const override { return deferred_; }

  uint32_t pick(const test_record& t, const cluster_state& c) override {
    pm_->observe(t, c);
    deferred_ = false;
    if (!pm_->any_unprobed())
      return choose(t, c);
    // Probing: a short test goes to a worker nothing is known of; a longer
    // one leaves such a worker free for a short one while a short one is
    // queued: another worker takes it, else it waits one pass (once).
    if (pm_->is_probe(t)) {
      auto slot = pm_->free_unprobed(t, c);
      if (slot != npos) {
        pm_->probed(slot, c);
        affinity_.remember(t, slot);
        last_ = "probe";
        return slot;
      }
    }
    auto slot = choose(t, c);
    if (slot == npos || !pm_->unprobed(slot, c))
      return slot;
    if (!pm_->is_probe(t) && pm_->probes_queued(c) > 0) {
      auto other = npos;
      if (pm_->spread() >= 1.18) {
        pm_->skip_unprobed = true;
        other = choose(t, c);
        pm_->skip_unprobed = false;
      } else {
        eligible_for ok{t, c};
        other = c.index().least_loaded(
          t.need, [&](uint32_t s) { return ok(s) && !pm_->unprobed(s, c); });
        if (other != npos)
          decide_as(*least_, t, other);
      }
      if (other != npos && !pm_->unprobed(other, c))
        return other;
      if (waited_.insert(t.req.test_id).second) {
        last_ = "deferred";
        deferred_ = true;
        return npos;
      }
    }
    waited_.erase(t.req.test_id);
    pm_->probed(slot, c);
    if (!pm_->any_unprobed())
      waited_.clear();
    return slot;
  }

  /// The worker for `t` without probing (npos with `deferred_` set when it
  /// waits for a faster one).
  uint32_t choose(const test_record& t, const cluster_state& c) {
    deferred_ = false;
    if (pm_->spread() >= 1.18) {
      // While GPU work is what the run waits for, a test that needs no
      // accelerator leaves the slots free devices need (and waits when
      // only such slots are free); up to spare_limit workers, since the
      // filtered search may step over every GPU worker whose slots are
      // all kept.
      bool spare = pace_model::first_accel(t) < 0
                   && c.worker_count() <= spare_limit
                   && pm_->accelerators_critical(c, spare_share);
      pm_->spare_accelerators = spare;
      auto slot = decide(perf_, t, c);
      pm_->spare_accelerators = false;
      if (spare
          && (slot == npos || !pace_model::leaves_accelerators_room(slot, c))) {
        last_ = "deferred";
        deferred_ = true;
        return npos;
      }
      if (slot == npos || !defer_slow_)
        return slot;
      // Late binding: the queue offers the longest tests first, so while
      // the work left outlasts this test here, taking it keeps the worker
      // busy without lengthening the run. Holding back is a bet on
      // estimates: both sides are planned pessimism_sd standard deviations
      // slow.
      auto here = pm_->completion(t, slot, c, pessimism_);
      if (here <= pm_->remaining_time(t, c))
        return slot;
      // Near the end a slow worker would finish this one later than a
      // faster worker once the tests ahead of it (as long or longer) drain,
      // so it waits for a faster worker instead; the core offers the free
      // slow one a shorter test meanwhile.
      auto k = pm_->tier(slot, c);
      // Tests that need an accelerator compete only with each other for
      // the slots that have one.
      auto accel = pace_model::first_accel(t) >= 0;
      auto ahead
        = c.queued_at_least(
            cluster_state::size_class_of(t.req.expected_duration), accel)
          + c.held_back(accel);
      auto faster = pm_->faster_completion(t, k, ahead, pessimism_);
      // Only a faster worker that could hold the test but cannot take it
      // now is worth waiting for: one that could take it now was weighed
      // by the pick already and lost (its learned pace for this model is
      // worse than its tier says), and waiting for it would wait forever
      // on an idle cluster.
      eligible_for ok{t, c};
      if (faster < here * defer_ratio
          && c.index().any_could_fit_if(t.need, [&](uint32_t s) {
               return pm_->tier(s, c) > k && ok(s)
                      && !c.index().fits_now(s, t.need);
             })) {
        last_ = "deferred";
        deferred_ = true;
        return npos;
      }
      return slot;
    }
    auto min_load = c.index().min_load();
    // Packing up to a thousand workers: chosen when best_fit's search grew
    // with the cluster. It is O(log n) now (bench_placement: 15 ns at
    // 100,000); whether packing beats spreading on large pools has not been
    // measured, so the limit stays until a benchmark says.
    if (min_load >= 0.75f && c.worker_count() <= 1024)
      return decide(*best_fit_, t, c);
    if (min_load < 0.5f) {
      auto slot = affinity_.affine(t, c);
      if (slot != npos) {
        auto faster = twice_as_fast(t, c, *pm_, perf_.pick(t, c), slot);
        if (faster != npos)
          return decide_as(perf_, t, faster);
        affinity_.remember(t, slot);
        last_ = affinity_.name();
        return slot;
      }
    }
    if (c.worker_count() >= 4096)
      return decide(*p2_, t, c);
    return decide(*least_, t, c);
  }

  void on_result(const test_record& t, uint32_t slot, const cluster_state& c,
                 double exec_seconds, bool success) override {
    pm_->learn(t, slot, c, exec_seconds);
    affinity_.on_result(t, slot, c, exec_seconds, success);
  }

  void on_worker_removed(uint32_t slot) override {
    pm_->forget(slot);
    affinity_.on_worker_removed(slot);
  }

private:
  uint32_t decide(strategy& s, const test_record& t, const cluster_state& c) {
    return decide_as(s, t, s.pick(t, c));
  }

  /// Records that `s` chose `slot` for `t`.
  uint32_t decide_as(const strategy& s, const test_record& t, uint32_t slot) {
    last_ = s.name();
    // Every choice becomes the model's home, so affinity has something to
    // return to once the cluster calms down.
    affinity_.remember(t, slot);
    return slot;
  }

  /// Defer when a faster worker is expected to finish the test in less
  /// than this share of the time the chosen slower one would take.
  static constexpr double defer_ratio = 0.85;

  /// CPU tests leave slots to free accelerators when the accelerator work
  /// takes at least this share of the time all waiting work takes. In alb
  /// benchmark (seeds 1-10) 0.8 had the lowest worst cells; 0.6 cost the
  /// 100-test cells, 1.0 and above let 20 x 500 reach 1.22-1.27, and
  /// sparing whenever any accelerator test waits took 5 x 100's worst from
  /// 1.21 to 1.67 (CPU tests pushed onto slow workers at the start).
  static constexpr double spare_share = 0.8;

  /// Most workers for which CPU tests leave slots to free accelerators.
  static constexpr size_t spare_limit = 4096;

  performance_based perf_;
  affinity_based affinity_;
  std::unique_ptr<strategy> least_;
  std::unique_ptr<strategy> p2_;
  std::unique_ptr<strategy> best_fit_;
  std::string_view last_ = "adaptive";
  bool defer_slow_ = true;
  bool deferred_ = false;
  /// Standard deviations of one run the hold decision adds.
  double pessimism_ = pessimism_sd;
  /// Tests that already waited a pass for a probe to go first.
  std::unordered_set<std::string> waited_;
};

// -- composite ----------------------------------------------------------------

/// Weighted vote: performance_based (0.4), least_loaded (0.3), power_of_two
/// (0.15) and affinity_based (0.15) each propose a fitting worker; the
/// worker with the most weight wins, ties to the earlier voter. Every
/// proposal fits, so the winner does. (best_fit does not vote; it was left
/// out when its search visited most workers of a large cluster, and adding
/// a voter changes every result, which needs a benchmark of its own.)
class composite final : public strategy {
public:
  explicit composite(const strategy_context& ctx)
    : pm_(std::make_shared<pace_model>(ctx.history, ctx.speed_hints)),
      perf_(pm_, false), least_(make_basic_strategy("least_loaded", ctx.seed)),
      p2_(make_basic_strategy("power_of_two", ctx.seed)) {
    // nop
  }

  std::string_view name() const override { return "composite"; }

  uint32_t pick(const test_record& t, const cluster_state& c) override {
    pm_->observe(t, c);
    auto fastest = perf_.pick(t, c);
    // Affinity's vote goes to a worker twice as fast as its home instead.
    auto home = affinity_.affine(t, c);
    auto faster
      = home == npos ? npos : twice_as_fast(t, c, *pm_, fastest, home);
    std::array<std::pair<uint32_t, double>, 4> votes{{
      {fastest, 0.4},
      {least_->pick(t, c), 0.3},
      {p2_->pick(t, c), 0.15},
      {faster != npos ? faster : affinity_.propose(t, c), 0.15},
    }};
    auto best = npos;
    double best_weight = 0;
    for (auto& [slot, _] : votes) {
      if (slot == npos || !c.fits_now(slot, t))
        continue;
      double weight = 0;
      for (auto& [other, w] : votes)
        if (other == slot)
          weight += w;
      if (weight > best_weight) {
        best_weight = weight;
        best = slot;
      }
    }
    affinity_.remember(t, best);
    return best;
  }

  void on_result(const test_record& t, uint32_t slot, const cluster_state& c,
                 double exec_seconds, bool success) override {
    pm_->learn(t, slot, c, exec_seconds);
    affinity_.on_result(t, slot, c, exec_seconds, success);
  }

  void on_worker_removed(uint32_t slot) override {
    pm_->forget(slot);
    affinity_.on_worker_removed(slot);
  }

private:
  pace_ptr pm_;
  performance_based perf_;
  affinity_based affinity_;
  std::unique_ptr<strategy> least_;
  std::unique_ptr<strategy> p2_;
};

// -- per test type ------------------------------------------------------------

/// `[scheduler.strategy_by_type]`: tests of a listed type go to that type's
/// strategy, the rest to the default one. Results go back to the strategy
/// that placed the test, so each is learned once.
class by_type final : public strategy {
public:
  by_type(std::unique_ptr<strategy> fallback,
          const std::map<std::string, std::string>& table,
          const strategy_context& ctx)
    : fallback_(std::move(fallback)) {
    for (auto& [type, name] : table)
      by_type_.emplace(type, make_strategy(name, ctx));
  }

  std::string_view name() const override { return fallback_->name(); }

  bool longest_first() const override { return fallback_->longest_first(); }

  bool deferred() const override { return last_ && last_->deferred(); }

  std::string_view last_choice() const override {
    return last_ ? last_->last_choice() : fallback_->last_choice();
  }

  uint32_t pick(const test_record& t, const cluster_state& c) override {
    last_ = &route(t);
    return last_->pick(t, c);
  }

  void on_result(const test_record& t, uint32_t slot, const cluster_state& c,
                 double exec_seconds, bool success) override {
    route(t).on_result(t, slot, c, exec_seconds, success);
  }

  void on_worker_removed(uint32_t slot) override {
    fallback_->on_worker_removed(slot);
    for (auto& [_, s] : by_type_)
      s->on_worker_removed(slot);
  }

  double expected_seconds(const test_record& t, uint32_t slot,
                          const cluster_state& c) override {
    return route(t).expected_seconds(t, slot, c);
  }

  uint32_t pick_copy(const test_record& t, const cluster_state& c,
                     uint32_t avoid) override {
    return route(t).pick_copy(t, c, avoid);
  }

private:
  strategy& route(const test_record& t) {
    auto it = by_type_.find(t.req.test_type);
    return it == by_type_.end() ? *fallback_ : *it->second;
  }

  std::unique_ptr<strategy> fallback_;
  std::unordered_map<std::string, std::unique_ptr<strategy>> by_type_;
  strategy* last_ = nullptr;
};

} // namespace

std::unique_ptr<strategy> make_adaptive_strategy(std::string_view name,
                                                 const strategy_context& ctx) {
  auto pm = [&] {
    return std::make_shared<pace_model>(ctx.history, ctx.speed_hints);
  };
  if (name == "weighted_round_robin")
    return std::make_unique<weighted_round_robin>();
  if (name == "performance_based")
    return std::make_unique<performance_based>(pm(), true);
  if (name == "priority_based")
    return std::make_unique<priority_based>(pm(), true);
  if (name == "affinity_based")
    return std::make_unique<affinity_based>();
  if (name == "adaptive")
    return std::make_unique<adaptive>(ctx);
  if (name == "composite")
    return std::make_unique<composite>(ctx);
  return nullptr;
}

std::unique_ptr<strategy>
make_by_type_strategy(std::unique_ptr<strategy> fallback,
                      const std::map<std::string, std::string>& table,
                      const strategy_context& ctx) {
  return std::make_unique<by_type>(std::move(fallback), table, ctx);
}

} // namespace alb::detail
