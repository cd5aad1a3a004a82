#include "runtime/output_capture.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>
#include <unordered_map>
#include <vector>

#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

namespace alb {

namespace {

/// The one thread that moves captured output: epoll over every capture's
/// pipes (level-triggered: a stream is pumped until its pipe is empty).
class output_pump {
public:
  static output_pump& instance() {
    // Leaked on purpose: its thread may still run while statics go away.
    static auto* p = new output_pump;
    return *p;
  }

  uint64_t add(const std::shared_ptr<output_capture>& c) {
    std::lock_guard<std::mutex> g{mtx_};
    auto id = ++next_;
    captures_[id] = c;
    return id;
  }

  bool watch(uint64_t id, int s, int fd) {
    epoll_event ev;
    std::memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.u64 = (id << 1) | static_cast<uint64_t>(s);
    return ::epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) == 0;
  }

  // The descriptor is still open (its capture owns it), so this cannot hit
  // a reused number.
  void unwatch(int fd) { ::epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr); }

  void forget(uint64_t id) {
    std::lock_guard<std::mutex> g{mtx_};
    captures_.erase(id);
  }

private:
  output_pump() {
    ep_ = ::epoll_create1(EPOLL_CLOEXEC);
    // Never joined: the pump lives as long as the process.
    std::thread{[this] { run(); }}.detach();
  }

  void run() {
    epoll_event evs[64];
    for (;;) {
      auto n = ::epoll_wait(ep_, evs, 64, -1);
      for (int i = 0; i < n; ++i) {
        auto id = evs[i].data.u64 >> 1;
        auto s = static_cast<output_capture::stream_id>(evs[i].data.u64 & 1);
        std::shared_ptr<output_capture> c;
        {
          std::lock_guard<std::mutex> g{mtx_};
          auto j = captures_.find(id);
          if (j != captures_.end())
            c = j->second.lock();
        }
        // A stale event of a capture that is gone: nothing to do.
        if (c)
          c->pump(s);
      }
    }
  }

  int ep_ = -1;
  std::mutex mtx_;
  uint64_t next_ = 0;
  std::unordered_map<uint64_t, std::weak_ptr<output_capture>> captures_;
};

} // namespace

std::shared_ptr<output_capture>
output_capture::start(int stdout_file, int stderr_file, uint64_t cap,
                      std::function<void()> on_limit, std::string& error) {
  std::shared_ptr<output_capture> c{new output_capture(cap)};
  c->file_[out] = stdout_file;
  c->file_[err] = stderr_file;
  c->on_limit_ = std::move(on_limit);
  for (int s = 0; s < 2; ++s) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      error = std::string{"cannot create a pipe: "} + std::strerror(errno);
      return nullptr;
    }
    c->reader_[s] = fds[0];
    c->writer_[s] = fds[1];
    // Only the reader side is non-blocking: the test's writes block on a
    // full pipe as they would on a slow terminal.
    ::fcntl(fds[0], F_SETFL, ::fcntl(fds[0], F_GETFL) | O_NONBLOCK);
    // Fewer wake-ups for chatty tests (a failure keeps the default size).
    ::fcntl(fds[0], F_SETPIPE_SZ, 1 << 20);
  }
  auto& pump = output_pump::instance();
  c->id_ = pump.add(c);
  std::lock_guard<std::mutex> g{c->mtx_};
  for (int s = 0; s < 2; ++s) {
    if (!pump.watch(c->id_, s, c->reader_[s])) {
      error = std::string{"cannot watch a pipe: "} + std::strerror(errno);
      c->finished_ = true;
      for (int t = 0; t < s; ++t)
        c->unwatch(static_cast<stream_id>(t));
      return nullptr;
    }
    c->watched_[s] = true;
  }
  return c;
}

output_capture::~output_capture() {
  {
    std::lock_guard<std::mutex> g{mtx_};
    unwatch(out);
    unwatch(err);
  }
  output_pump::instance().forget(id_);
  for (int* fds : {reader_, writer_, file_})
    for (int s = 0; s < 2; ++s)
      if (fds[s] >= 0)
        ::close(fds[s]);
}

void output_capture::close_writers() {
  std::lock_guard<std::mutex> g{mtx_};
  for (int& fd : writer_) {
    if (fd >= 0)
      ::close(fd);
    fd = -1;
  }
}

void output_capture::unwatch(stream_id s) {
  if (!watched_[s])
    return;
  output_pump::instance().unwatch(reader_[s]);
  watched_[s] = false;
}

bool output_capture::drain(stream_id s) {
  char buf[64 * 1024];
  for (;;) {
    auto room = budget_.room(sizeof(buf) * 16);
    if (room == 0) {
      // No room left: one more byte means the cap is exceeded (the byte
      // is dropped); end-of-file means the test stopped exactly at it.
      char c;
      auto n = ::read(reader_[s], &c, 1);
      if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return true;
      if (n > 0)
        budget_.overflow();
      return false;
    }
    ssize_t n;
    if (splice_ok_[s]) {
      n = ::splice(reader_[s], nullptr, file_[s], nullptr,
                   static_cast<size_t>(room), SPLICE_F_NONBLOCK);
      if (n < 0 && errno == EINVAL) {
        // A file system splice cannot write to: copy instead.
        splice_ok_[s] = false;
        continue;
      }
    } else {
      n = ::read(reader_[s], buf,
                 std::min(sizeof(buf), static_cast<size_t>(room)));
      if (n > 0) {
        ssize_t done = 0;
        while (done < n) {
          auto w = ::write(file_[s], buf + done, static_cast<size_t>(n - done));
          if (w < 0 && errno == EINTR)
            continue;
          if (w <= 0)
            return false; // the log file cannot take more (disk full)
          done += w;
        }
      }
    }
    if (n < 0) {
      if (errno == EINTR)
        continue;
      // EAGAIN: empty for now, writers alive; anything else: give up on
      // this stream (the test goes on; its output is lost).
      return errno == EAGAIN;
    }
    if (n == 0)
      return false; // end-of-file: every writer is gone
    bytes_[s] += static_cast<uint64_t>(n);
    budget_.used(static_cast<uint64_t>(n));
  }
}

void output_capture::pump(stream_id s) {
  bool report = false;
  {
    std::lock_guard<std::mutex> g{mtx_};
    if (finished_ || !watched_[s])
      return;
    if (!drain(s)) {
      unwatch(s);
      if (budget_.exceeded()) {
        // Nothing more reaches the files: the writer blocks until the
        // owner kills it.
        unwatch(out);
        unwatch(err);
        report = !limit_reported_;
        limit_reported_ = true;
      }
    }
  }
  if (report && on_limit_)
    on_limit_();
}

void output_capture::finish() {
  std::lock_guard<std::mutex> g{mtx_};
  if (finished_)
    return;
  for (auto s : {out, err}) {
    if (watched_[s] && !budget_.exceeded())
      drain(s);
    unwatch(s);
  }
  finished_ = true;
}

uint64_t output_capture::stdout_bytes() const {
  std::lock_guard<std::mutex> g{mtx_};
  return bytes_[out];
}

uint64_t output_capture::stderr_bytes() const {
  std::lock_guard<std::mutex> g{mtx_};
  return bytes_[err];
}

bool output_capture::exceeded() const {
  std::lock_guard<std::mutex> g{mtx_};
  return budget_.exceeded();
}

uint64_t output_capture::cap() const {
  return budget_.cap();
}

std::string output_capture::tail(stream_id s, size_t n) const {
  uint64_t size;
  {
    std::lock_guard<std::mutex> g{mtx_};
    size = bytes_[s];
  }
  auto len = static_cast<size_t>(std::min<uint64_t>(size, n));
  std::string out(len, '\0');
  auto got = ::pread(file_[s], out.data(), len, static_cast<off_t>(size - len));
  out.resize(got > 0 ? static_cast<size_t>(got) : 0);
  return out;
}

} // namespace alb
