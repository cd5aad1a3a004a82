#pragma once

// A worker's local queue: the placements it holds, split into those waiting
// for a slot and those running, plus the reports not yet sent. It is the
// bookkeeping both executors (the simulation and real processes) share, so
// revokes, cancels and flushes behave the same whichever runs the tests.
// No CAF, no clocks: the caller passes the time and does the sending.
//
// `Item` needs public `ref` and `gen` members (uint32_t): a placement is
// named by (ref, gen) everywhere.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

namespace alb {

/// What a cancel found.
enum class cancel_found {
  /// Nothing with that (ref, gen): already finished, revoked or unknown.
  nothing,
  /// It was waiting: removed, nothing ran.
  queued,
  /// It was running: removed from the running set; the caller stops it.
  running,
};

/// The placements one worker holds and the reports it owes.
template<class Item, class Report>
class local_queue {
public:
  /// A placement waiting for a slot.
  struct waiting {
    /// The placement.
    Item item;
    /// When it arrived (caller's clock, seconds).
    double received = 0;
  };

  /// A placement that was started.
  struct started {
    /// The placement.
    Item item;
    /// Seconds it waited in this queue before starting.
    double queued_seconds = 0;
    /// When it started (caller's clock, seconds).
    double started_at = 0;
  };

  /// At most `slots` (at least 1) placements run at once.
  explicit local_queue(int slots = 1) : slots_(slots < 1 ? 1 : slots) {
    // nop
  }

  /// Changes how many run at once (at least 1).
  void set_slots(int slots) { slots_ = slots < 1 ? 1 : slots; }

  /// How many run at once at most.
  int slots() const { return slots_; }

  /// Numbers runs from `first` on (so several queues of one host name
  /// their runs apart: a pool gives each worker its own range).
  void set_first_seq(uint64_t first) { next_seq_ = first; }

  /// Placements waiting for a slot.
  size_t queued() const { return queue_.size() - head_; }

  /// Placements running.
  size_t running() const { return running_.size(); }

  /// Whether a slot is free and a placement waits for it.
  bool can_start() const {
    return head_ < queue_.size()
           && running_.size() < static_cast<size_t>(slots_);
  }

  /// Adds a placement at the back of the queue.
  void push(Item item, double now) {
    queue_.push_back(waiting{std::move(item), now});
  }

  /// Starts placements while slots are free: `start(seq, started&)` runs
  /// each (a fresh sequence number names it until it finishes) and returns
  /// true when it is now running, false when it already ended (it then
  /// reported through `report` itself, e.g. a zero-length simulation or a
  /// command that could not start). Returns how many were started.
  template<class Start>
  size_t start_ready(double now, Start&& start) {
    size_t n = 0;
    while (can_start()) {
      auto w = std::move(queue_[head_++]);
      if (head_ == queue_.size())
        drained();
      else if (head_ >= 16 && 2 * head_ >= queue_.size())
        compact();
      auto seq = next_seq_++;
      started s{std::move(w.item), now > w.received ? now - w.received : 0.0,
                now};
      ++n;
      if (start(seq, s))
        running_.emplace(seq, std::move(s));
    }
    return n;
  }

  /// The running placement `seq`, or null when it is no longer running.
  started* find_running(uint64_t seq) {
    auto i = running_.find(seq);
    return i == running_.end() ? nullptr : &i->second;
  }

  /// Removes the running placement `seq` because it ended; empty when it
  /// is no longer running (cancelled meanwhile: its end is then ignored).
  std::optional<started> finish(uint64_t seq) {
    auto i = running_.find(seq);
    if (i == running_.end())
      return std::nullopt;
    auto s = std::move(i->second);
    running_.erase(i);
    return s;
  }

  /// Rebalancing asks for (ref, gen) back: given only while it waits, so a
  /// test that started stays where it is and never runs twice.
  bool revoke(uint32_t ref, uint32_t gen) {
    for (auto i = queue_.begin() + static_cast<std::ptrdiff_t>(head_);
         i != queue_.end(); ++i) {
      if (i->item.ref == ref && i->item.gen == gen) {
        queue_.erase(i);
        if (head_ == queue_.size())
          drained();
        return true;
      }
    }
    return false;
  }

  /// Withdraws (ref, gen), waiting or running. For a running one, `seq`
  /// (if non-null) receives its sequence number so the caller can stop
  /// what runs; no report is owed for it either way.
  cancel_found cancel(uint32_t ref, uint32_t gen, uint64_t* seq = nullptr) {
    if (revoke(ref, gen))
      return cancel_found::queued;
    for (auto i = running_.begin(); i != running_.end(); ++i) {
      if (i->second.item.ref == ref && i->second.item.gen == gen) {
        if (seq)
          *seq = i->first;
        running_.erase(i);
        return cancel_found::running;
      }
    }
    return cancel_found::nothing;
  }

  /// Sequence numbers of everything running (to stop it all at the end).
  std::vector<uint64_t> running_seqs() const {
    std::vector<uint64_t> out;
    out.reserve(running_.size());
    for (auto& kv : running_)
      out.push_back(kv.first);
    return out;
  }

  /// Keeps a report until the next flush.
  void report(Report r) {
    // A flush hands the vector over, so the next reports would grow a new
    // one 1, 2, 4, ... with a reallocation each (callgrind: 2.7% of a
    // 1,000-worker run): room for what the worker holds now, at once.
    if (out_.capacity() == 0)
      out_.reserve(
        std::max<size_t>(8, running_.size() + (queue_.size() - head_)));
    out_.push_back(std::move(r));
  }

  /// Reports kept so far.
  size_t pending_reports() const { return out_.size(); }

  /// The worker is registered: reports may leave from now on.
  void set_joined() { joined_ = true; }

  /// Whether the worker is registered.
  bool joined() const { return joined_; }

  /// The reports to send now: all kept ones once joined, none before
  /// (they wait for the slot number the scheduler gives at the join).
  std::vector<Report> flush() {
    std::vector<Report> out;
    if (joined_)
      out.swap(out_);
    return out;
  }

private:
  /// Capacity an emptied queue keeps; a larger one is given back, so a
  /// burst does not leave every worker of a large pool holding its peak.
  static constexpr size_t kept_capacity = 8;

  // Drops the taken front (a queue that never runs empty must not grow):
  // amortized O(1) per placement, as at most half the buffer moves.
  void compact() {
    queue_.erase(queue_.begin(),
                 queue_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }

  // The queue ran empty: start over at the front of the buffer.
  void drained() {
    head_ = 0;
    if (queue_.capacity() > kept_capacity)
      std::vector<waiting>{}.swap(queue_);
    else
      queue_.clear();
  }

  int slots_;
  bool joined_ = false;
  uint64_t next_seq_ = 0;
  /// Waiting placements are `queue_[head_..]`: a vector, not a deque,
  /// because an empty std::deque already holds ~600 bytes (its map and a
  /// first block), which is most of a small worker.
  std::vector<waiting> queue_;
  size_t head_ = 0;
  std::unordered_map<uint64_t, started> running_;
  std::vector<Report> out_;
};

} // namespace alb
