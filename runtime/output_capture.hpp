#pragma once

// A test's stdout and stderr, captured while it runs: each goes through a
// pipe that one process-wide thread (epoll) drains into a log file with
// splice, counting bytes, so the cap on their sum holds while the test
// runs. The moment the test has written more than the cap the capture
// stops reading (the writer blocks on the full pipe, nothing more reaches
// the files) and calls back once, so the owner kills the test; the files
// never hold more than the cap together.
//
// Linux only (pipes, splice, epoll). No CAF.

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

namespace alb {

/// Byte counting of one capture: how much of the cap each write may use.
/// Separate from the I/O so it can be tested alone.
class output_budget {
public:
  /// A budget of `cap` bytes for all streams together (0 = no cap).
  explicit output_budget(uint64_t cap) : cap_(cap) {
    // nop
  }
  /// Bytes a write may take now: the room left (a cap of 0: `wanted`).
  uint64_t room(uint64_t wanted) const {
    if (cap_ == 0)
      return wanted;
    return wanted < cap_ - used_ ? wanted : cap_ - used_;
  }
  /// `n` bytes were written.
  void used(uint64_t n) { used_ += n; }
  /// More output arrived while no room was left: the cap is exceeded.
  void overflow() { exceeded_ = cap_ != 0; }
  /// Bytes written so far.
  uint64_t total() const { return used_; }
  /// Whether the test wrote more than the cap.
  bool exceeded() const { return exceeded_; }
  /// The cap (0 = none).
  uint64_t cap() const { return cap_; }

private:
  uint64_t cap_;
  uint64_t used_ = 0;
  bool exceeded_ = false;
};

/// One test's captured stdout and stderr. Made by `start`, it owns the
/// read ends of two pipes and the two files they drain into; the child
/// gets the write ends (`stdout_writer`, `stderr_writer`), which the owner
/// closes with `close_writers` once the child holds its copies.
class output_capture {
public:
  /// Which stream.
  enum stream_id { out = 0, err = 1 };

  /// Starts capturing into the open files `stdout_file` and `stderr_file`
  /// (taken over: closed with the capture) with a cap of `cap` bytes on
  /// their sum (0 = none). `on_limit` is called once, from the capture's
  /// thread, when the cap is exceeded (cheap and thread-safe: send a
  /// message). Null (and `error` set) when pipes cannot be made.
  static std::shared_ptr<output_capture> start(int stdout_file, int stderr_file,
                                               uint64_t cap,
                                               std::function<void()> on_limit,
                                               std::string& error);

  ~output_capture();
  output_capture(const output_capture&) = delete;
  output_capture& operator=(const output_capture&) = delete;

  /// Write end of the stdout pipe, for the child (-1 once closed).
  int stdout_writer() const { return writer_[out]; }
  /// Write end of the stderr pipe, for the child (-1 once closed).
  int stderr_writer() const { return writer_[err]; }
  /// Closes this process's copies of the write ends (after the spawn):
  /// end-of-file then comes when the child's tree is gone.
  void close_writers();

  /// Drains what is left in the pipes (without waiting for writers that
  /// are still alive) and stops capturing. Call it once the test's tree
  /// has ended; the counts below are final then.
  void finish();

  /// Bytes written to the stdout file.
  uint64_t stdout_bytes() const;
  /// Bytes written to the stderr file.
  uint64_t stderr_bytes() const;
  /// Whether the test wrote more than the cap.
  bool exceeded() const;
  /// The cap (0 = none).
  uint64_t cap() const;
  /// The last `n` bytes written to the file of `s`.
  std::string tail(stream_id s, size_t n) const;

  /// Moves what the pipe of `s` holds into its file (the capture thread
  /// calls it; public for it only).
  void pump(stream_id s);

private:
  explicit output_capture(uint64_t cap) : budget_(cap) {
    // nop
  }
  // Moves what the pipe holds; false once the stream is done (end-of-file,
  // error or over the cap). With `mtx_` held.
  bool drain(stream_id s);
  // Stops watching stream `s`. With `mtx_` held.
  void unwatch(stream_id s);

  mutable std::mutex mtx_;
  output_budget budget_;
  int reader_[2] = {-1, -1};
  int writer_[2] = {-1, -1};
  int file_[2] = {-1, -1};
  uint64_t bytes_[2] = {0, 0};
  bool splice_ok_[2] = {true, true};
  bool watched_[2] = {false, false};
  uint64_t id_ = 0;
  bool finished_ = false;
  bool limit_reported_ = false;
  std::function<void()> on_limit_;
};

} // namespace alb
