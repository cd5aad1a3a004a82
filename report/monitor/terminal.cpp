#include "report/monitor/terminal.hpp"

#include "report/monitor/text.hpp"

#include <cerrno>
#include <clocale>
#include <csignal>
#include <cstring>

#include <langinfo.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

namespace alb::report {

using detail::write_all;

// -- terminal -----------------------------------------------------------------

namespace {

// State the signal handler needs: plain globals, read with async-signal-safe
// calls only.
struct termios saved_termios;
volatile std::sig_atomic_t termios_saved = 0;
volatile std::sig_atomic_t screen_active = 0;
struct sigaction previous_int, previous_term;
volatile std::sig_atomic_t handlers_installed = 0;

constexpr char enter_seq[] = "\033[?1049h\033[?25l\033[H\033[2J";
constexpr char leave_seq[] = "\033[0m\033[?25h\033[?1049l";

void restore_terminal() {
  if (screen_active) {
    write_all(STDOUT_FILENO, leave_seq, sizeof(leave_seq) - 1);
    screen_active = 0;
  }
  if (termios_saved) {
    ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
    termios_saved = 0;
  }
}

void restore_and_reraise(int sig) {
  restore_terminal();
  // Give the signal back to whoever had it (usually the default: terminate).
  ::sigaction(sig, sig == SIGINT ? &previous_int : &previous_term, nullptr);
  ::raise(sig);
}

const char* style_seq(line_style s) {
  switch (s) {
    case line_style::title:
      return "\033[1;7m";
    case line_style::heading:
      return "\033[1m";
    case line_style::alert:
      return "\033[1;31m";
    case line_style::dim:
      return "\033[2m";
    case line_style::good:
      return "\033[32m";
    default:
      return "";
  }
}

} // namespace

bool terminal_is_utf8() {
  std::setlocale(LC_CTYPE, "");
  auto* cs = ::nl_langinfo(CODESET);
  return cs != nullptr
         && (std::strcmp(cs, "UTF-8") == 0 || std::strcmp(cs, "utf8") == 0);
}

terminal_screen::terminal_screen(bool read_keys, bool restore_on_signal) {
  if (read_keys && ::isatty(STDIN_FILENO)
      && ::tcgetattr(STDIN_FILENO, &saved_termios) == 0) {
    auto raw = saved_termios;
    // Single keys without Enter and without echo; Ctrl-C still signals.
    raw.c_lflag &= static_cast<tcflag_t>(~(ICANON | ECHO));
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    termios_saved = 1;
    ::tcsetattr(STDIN_FILENO, TCSANOW, &raw);
  }
  if (restore_on_signal) {
    struct sigaction sa {};
    sa.sa_handler = restore_and_reraise;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, &previous_int);
    ::sigaction(SIGTERM, &sa, &previous_term);
    handlers_installed = 1;
  }
  write_all(STDOUT_FILENO, enter_seq, sizeof(enter_seq) - 1);
  screen_active = 1;
}

terminal_screen::~terminal_screen() {
  if (handlers_installed) {
    ::sigaction(SIGINT, &previous_int, nullptr);
    ::sigaction(SIGTERM, &previous_term, nullptr);
    handlers_installed = 0;
  }
  restore_terminal();
}

std::pair<int, int> terminal_screen::size() {
  winsize ws{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0
      && ws.ws_row > 0)
    return {ws.ws_col, ws.ws_row};
  return {80, 24};
}

void terminal_screen::draw(const std::vector<screen_line>& lines) {
  std::string frame = "\033[H";
  for (std::size_t i = 0; i < lines.size(); ++i) {
    frame += style_seq(lines[i].style);
    frame += lines[i].text;
    frame += "\033[0m\033[K";
    if (i + 1 < lines.size())
      frame += "\r\n";
  }
  frame += "\033[J";
  write_all(STDOUT_FILENO, frame.data(), frame.size());
}

live_view::live_view(std::string title)
  : title_(std::move(title)), unicode_(terminal_is_utf8()),
    screen_(false, true) {
  auto [w, h] = terminal_screen::size();
  render_options opts;
  opts.width = w;
  opts.height = h;
  opts.unicode = unicode_;
  opts.title = title_;
  screen_.draw(render_screen(state_, opts));
}

live_view::~live_view() = default;

void live_view::show(std::string_view scrape, double elapsed,
                     std::string status) {
  state_.update(parse_exposition(scrape, elapsed));
  auto [w, h] = terminal_screen::size();
  render_options opts;
  opts.width = w;
  opts.height = h;
  opts.unicode = unicode_;
  opts.title = title_;
  opts.hint = "Ctrl-C stops the run";
  opts.status = std::move(status);
  screen_.draw(render_screen(state_, opts));
}

} // namespace alb::report
