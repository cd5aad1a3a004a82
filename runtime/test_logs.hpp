#pragma once

// The per-test log files of a node: each test's stdout and stderr in
// `<dir>/<name>.stdout` and `<dir>/<name>.stderr`, where the name is made
// from the test id (safe characters only, plus a hash of the whole id, so
// no id can name a file outside the directory). The directory stays
// bounded: once a test's files are closed they count towards a total size
// and a number of tests, and the oldest ones are deleted past either.
// Shared by the workers of a node (thread-safe). No CAF.

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace alb {

/// Settings of a node's log directory.
struct test_log_options {
  /// The directory ("" = a private temporary one, deleted with the
  /// store).
  std::string dir;
  /// Bytes all closed logs may take together before the oldest go.
  uint64_t max_total_bytes = uint64_t{1} << 30;
  /// Tests whose logs are kept before the oldest go.
  size_t max_tests = 1000;
};

/// A piece of a test's log, as `test_log_store::read` finds it.
struct log_piece {
  /// Whether the log exists (kept or being written).
  bool found = false;
  /// Whether the test is still writing it (more may follow).
  bool writing = false;
  /// Size of the log now, bytes.
  uint64_t size = 0;
  /// The bytes from the offset asked for (at most the amount asked for).
  std::string data;
};

/// A node's log directory.
class test_log_store {
public:
  /// Which of a test's logs.
  enum stream_id { out = 0, err = 1 };

  /// Opens (creating it, mode 0700) the directory and counts the logs
  /// already in it (a node that restarts under the same directory); null
  /// and `error` set when it cannot.
  static std::shared_ptr<test_log_store> open(const test_log_options& o,
                                              std::string& error);
  ~test_log_store();
  test_log_store(const test_log_store&) = delete;
  test_log_store& operator=(const test_log_store&) = delete;

  /// The directory.
  const std::string& dir() const { return dir_; }

  /// File name (without directory and suffix) for the logs of `test_id`.
  static std::string stem(const std::string& test_id);
  /// Path of a log of `test_id`.
  std::string path(const std::string& test_id, stream_id s) const;

  /// Creates (truncating) both logs of `test_id` for writing (and reading
  /// the tails back); true with `fds` set (close-on-exec), else false with
  /// `error`. A test being written is never pruned.
  bool create(const std::string& test_id, int fds[2], std::string& error);
  /// The logs of `test_id` are complete (`bytes` in all): they count now,
  /// and the oldest logs past the limits are deleted.
  void closed(const std::string& test_id, uint64_t bytes);

  /// Up to `max` bytes of a log of `test_id` from `offset`.
  log_piece read(const std::string& test_id, stream_id s, uint64_t offset,
                 size_t max) const;

  /// Whether `test_id` is being written now.
  bool writing(const std::string& test_id) const;
  /// Tests whose logs are kept (closed ones).
  size_t kept() const;
  /// Bytes of the kept logs.
  uint64_t kept_bytes() const;

private:
  explicit test_log_store(const test_log_options& o) : opts_(o) {
    // nop
  }
  void prune_locked();

  test_log_options opts_;
  std::string dir_;
  bool temporary_ = false;
  mutable std::mutex mtx_;
  /// Closed logs, oldest first: stem and the generation it was closed
  /// with (an entry whose stem was written again since is stale).
  std::deque<std::pair<std::string, uint64_t>> closed_;
  /// Bytes and generation of each kept stem.
  std::unordered_map<std::string, std::pair<uint64_t, uint64_t>> sizes_;
  uint64_t gen_ = 0;
  /// Stems being written, with how many writers.
  std::unordered_map<std::string, int> open_;
  uint64_t total_ = 0;
};

} // namespace alb
