// The `alb monitor` loop: fetch, update, draw (or print a line), wait for
// the next refresh or a key.

#include "report/monitor.hpp"

#include "report/monitor/text.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <optional>

#include <poll.h>
#include <unistd.h>

namespace alb::report {

using namespace detail;

namespace {

using clock_type = std::chrono::steady_clock;

int ms_left(clock_type::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - clock_type::now())
                .count();
  return static_cast<int>(std::clamp<long long>(left, 0, 60'000));
}

} // namespace

namespace {

volatile std::sig_atomic_t stop_requested = 0;
volatile std::sig_atomic_t resized = 0;

void on_stop_signal(int) {
  stop_requested = 1;
}

void on_resize_signal(int) {
  resized = 1;
}

// Installs the monitor's handlers without SA_RESTART, so a signal cuts the
// wait between refreshes short; restores the previous ones when done.
struct monitor_signals {
  struct sigaction old_int, old_term, old_winch;

  monitor_signals() {
    stop_requested = 0;
    resized = 0;
    struct sigaction sa {};
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop_signal;
    ::sigaction(SIGINT, &sa, &old_int);
    ::sigaction(SIGTERM, &sa, &old_term);
    sa.sa_handler = on_resize_signal;
    ::sigaction(SIGWINCH, &sa, &old_winch);
  }

  ~monitor_signals() {
    ::sigaction(SIGINT, &old_int, nullptr);
    ::sigaction(SIGTERM, &old_term, nullptr);
    ::sigaction(SIGWINCH, &old_winch, nullptr);
  }
};

} // namespace

int run_monitor(const monitor_options& opts) {
  bool tty = ::isatty(STDOUT_FILENO) != 0;
  bool keys = tty && ::isatty(STDIN_FILENO) != 0;
  bool unicode = terminal_is_utf8();
  monitor_signals signals;
  monitor_state state;
  std::optional<terminal_screen> screen;
  if (tty)
    screen.emplace(keys, false);
  fetch_options fetch;
  fetch.timeout_seconds = std::clamp(opts.interval, 0.5, 5.0);
  fetch.ca_file = opts.ca_file;
  auto redraw = [&] {
    auto [w, h] = terminal_screen::size();
    render_options r;
    r.width = w;
    r.height = h;
    r.unicode = unicode;
    r.title = "alb monitor  " + opts.url.text;
    r.hint = "q quits";
    if (state.has_data())
      r.status = "updated " + local_clock() + (unicode ? " \u00b7 " : " - ")
                 + "every " + interval_text(opts.interval) + " s";
    screen->draw(render_screen(state, r));
  };
  uint64_t refreshes = 0;
  bool quit = false;
  while (!quit && !stop_requested) {
    auto started = clock_type::now();
    auto got = fetch_metrics(opts.url, fetch);
    if (got.ok)
      state.update(parse_exposition(got.body, monotonic_seconds()));
    else
      state.unreachable(
        unreachable_message(opts.url.text, got.error, opts.interval, unicode));
    ++refreshes;
    if (tty) {
      redraw();
    } else {
      auto line
        = "[" + local_clock() + "] " + summary_line(state, unicode) + "\n";
      write_all(STDOUT_FILENO, line.data(), line.size());
    }
    if (opts.count > 0 && refreshes >= opts.count)
      break;
    auto next = started
                + std::chrono::duration_cast<clock_type::duration>(
                  std::chrono::duration<double>(opts.interval));
    while (!quit && !stop_requested) {
      auto left = ms_left(next);
      if (left <= 0)
        break;
      pollfd p{STDIN_FILENO, POLLIN, 0};
      auto n = ::poll(&p, keys ? 1 : 0, left);
      if (n < 0 && errno == EINTR) {
        if (resized && tty) {
          resized = 0;
          redraw();
        }
        continue;
      }
      if (n > 0 && (p.revents & POLLIN)) {
        char c[64];
        auto got_keys = ::read(STDIN_FILENO, c, sizeof(c));
        for (ssize_t i = 0; i < got_keys; ++i)
          if (c[i] == 'q' || c[i] == 'Q')
            quit = true;
      } else if (n > 0) {
        // The terminal hung up: no more keys will come.
        keys = false;
      }
    }
  }
  if (screen) {
    screen.reset();
    // Leave the last view's gist in the scrollback.
    auto line = "alb monitor: " + summary_line(state, unicode) + "\n";
    write_all(STDOUT_FILENO, line.data(), line.size());
  }
  return state.updates() > 0 ? 0 : 1;
}

} // namespace alb::report
