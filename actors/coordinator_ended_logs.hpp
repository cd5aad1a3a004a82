#pragma once

// Where the logs of the latest ended tests are, and whose they are (part of
// the coordinator: `alb logs ID` of a test that ended). CAF-free.
//
// Every test that ends adds an entry and an `alb logs` of an ended test
// reads one, so the write is the hot path: a ring of entries written in
// order, each slot's strings reusing their buffers, costs no allocation and
// touches memory sequentially. A hash map keyed by test id cost a lookup
// into cold memory to insert each entry and another to evict the oldest
// (14% of the coordinator's CPU at 10,000 slots). The rare read scans the
// ring from the newest entry back: at most `capacity` string compares.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace alb::coord {

/// Where the log of an ended test is, and whose it is (`alb logs`).
struct ended_log {
  /// The test.
  std::string test_id;
  /// Node that ran its last attempt ("" = none).
  std::string node;
  /// Digest of its submitter's key.
  std::string owner;
  /// End state, for the message when it never ran.
  std::string status;
};

/// The newest `capacity` ended tests' log locations, oldest overwritten
/// first. Single-threaded (the coordinator's core owns it).
class ended_log_ring {
public:
  /// Keeps the newest `capacity` entries (at least one).
  explicit ended_log_ring(size_t capacity) : ring_(capacity ? capacity : 1) {
    // nop
  }

  /// Adds the entry of a test that ended (it replaces, for `find`, an
  /// earlier one of the same id).
  void add(const std::string& test_id, const std::string& node,
           const std::string& owner, const std::string& status) {
    auto& e = ring_[next_];
    // assign, not a new string: the slot keeps its buffers.
    e.test_id.assign(test_id);
    e.node.assign(node);
    e.owner.assign(owner);
    e.status.assign(status);
    next_ = next_ + 1 == ring_.size() ? 0 : next_ + 1;
    if (size_ < ring_.size())
      ++size_;
  }

  /// The newest entry of `test_id`, null when none is kept.
  const ended_log* find(const std::string& test_id) const {
    size_t at = next_;
    for (size_t n = 0; n < size_; ++n) {
      at = at == 0 ? ring_.size() - 1 : at - 1;
      if (ring_[at].test_id == test_id)
        return &ring_[at];
    }
    return nullptr;
  }

  /// Entries kept.
  size_t size() const { return size_; }

private:
  std::vector<ended_log> ring_;
  /// Slot the next entry goes to.
  size_t next_ = 0;
  /// Slots written so far, at most the ring's size.
  size_t size_ = 0;
};

} // namespace alb::coord
