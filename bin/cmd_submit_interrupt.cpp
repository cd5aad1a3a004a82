// Ctrl-C on `alb submit`: cancel what it submitted, wait (bounded) for the
// cancellations to be confirmed (bin/cluster_cli.hpp, submit_interrupt).

#include <atomic>
#include <iostream>
#include <thread>

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "actors/coordinator_client.hpp"
#include "bin/cluster_cli.hpp"

namespace alb::cli {

struct submit_interrupt::impl {
  sigset_t old_mask;
  int sigfd = -1;
  int done = -1;
  std::atomic<int> sig{0};
  std::thread watcher;

  // Waits up to `ms` (< 0 = forever) for a signal or the end of the wait;
  // returns the signal, 0 on the end or the time-out.
  int next(int ms) {
    pollfd fds[2] = {{sigfd, POLLIN, 0}, {done, POLLIN, 0}};
    for (;;) {
      auto n = ::poll(fds, 2, ms);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0 || (fds[1].revents & POLLIN))
        return 0;
      signalfd_siginfo si;
      if (::read(sigfd, &si, sizeof(si)) != sizeof(si))
        return 0;
      return static_cast<int>(si.ssi_signo);
    }
  }
};

submit_interrupt::submit_interrupt() : impl_(new impl) {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGINT);
  sigaddset(&s, SIGTERM);
  ::pthread_sigmask(SIG_BLOCK, &s, &impl_->old_mask);
  impl_->sigfd = ::signalfd(-1, &s, SFD_CLOEXEC);
  impl_->done = ::eventfd(0, EFD_CLOEXEC);
}

submit_interrupt::~submit_interrupt() {
  auto& d = *impl_;
  if (d.done >= 0) {
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(d.done, &one, sizeof(one));
  }
  if (d.watcher.joinable())
    d.watcher.join();
  if (d.sigfd >= 0)
    ::close(d.sigfd);
  if (d.done >= 0)
    ::close(d.done);
  ::pthread_sigmask(SIG_SETMASK, &d.old_mask, nullptr);
}

void submit_interrupt::start(coordinator_client& client,
                             std::vector<std::string> ids, double grace) {
  auto& d = *impl_;
  if (d.sigfd < 0 || d.done < 0 || d.watcher.joinable())
    return;
  d.watcher = std::thread{[&d, &client, ids = std::move(ids), grace] {
    auto sig = d.next(-1);
    if (sig == 0)
      return;
    d.sig = sig;
    std::cerr << "alb submit: interrupted: cancelling the tests not ended "
                 "yet (again to stop waiting)"
              << std::endl;
    try {
      auto r = client.cancel_tests(ids);
      std::cerr << "alb submit: " << r.cancelled.size()
                << " tests cancelled, waiting for their confirmation"
                << std::endl;
    } catch (const coordinator_client_error& e) {
      std::cerr << "alb submit: error: " << e.what() << std::endl;
      client.close();
      return;
    }
    // The cancelled outcomes end the submitter's wait on their own; if
    // they do not come in time (or the user insists), stop waiting.
    if (d.next(static_cast<int>(grace * 1000)) != 0 || client.open() > 0) {
      std::cerr << "alb submit: not waiting for the confirmation of "
                << client.open() << " tests" << std::endl;
      client.close();
    }
  }};
}

int submit_interrupt::signal() const {
  return impl_->sig;
}

} // namespace alb::cli
