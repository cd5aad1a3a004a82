// run_to_end: a helper command run as a `process` with its output captured
// (runtime/process.hpp).

#include "runtime/process.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

namespace alb {

int run_result::exit_code() const {
  if (!error.empty())
    return -1;
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  if (WIFSIGNALED(status))
    return 128 + WTERMSIG(status);
  return -1;
}

run_result run_to_end(spawn_options opts, size_t max_output,
                      double timeout_seconds) {
  run_result r;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    r.error = std::string{"pipe: "} + std::strerror(errno);
    return r;
  }
  opts.stdout_fd = fds[1];
  if (opts.stderr_fd < 0)
    opts.stderr_fd = fds[1];
  auto p = process::spawn(opts, r.error);
  // Only the child may hold the write end now, so EOF means it (and
  // anything that inherited its output) is done writing.
  ::close(fds[1]);
  if (!p.running()) {
    ::close(fds[0]);
    if (r.error.empty())
      r.error = "cannot start " + (opts.argv.empty() ? "" : opts.argv[0]);
    return r;
  }
  using clock = std::chrono::steady_clock;
  auto deadline = clock::now()
                  + std::chrono::duration_cast<clock::duration>(
                    std::chrono::duration<double>(
                      timeout_seconds > 0 ? timeout_seconds : 0));
  char buf[4096];
  for (;;) {
    if (timeout_seconds > 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - clock::now())
                    .count();
      if (left <= 0) {
        r.timed_out = true;
        p.stop();
        break;
      }
      pollfd pfd{fds[0], POLLIN, 0};
      auto n
        = ::poll(&pfd, 1, static_cast<int>(std::min<long long>(left, 1 << 30)));
      if (n < 0 && errno != EINTR)
        break;
      if (n <= 0)
        continue;
    }
    auto n = ::read(fds[0], buf, sizeof(buf));
    if (n > 0) {
      auto keep = std::min(static_cast<size_t>(n),
                           max_output - std::min(max_output, r.output.size()));
      r.output.append(buf, keep);
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(fds[0]);
  r.status = p.wait();
  return r;
}

} // namespace alb
