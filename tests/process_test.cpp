// The process class and the reaper: exit statuses, start errors, process
// groups killed as a whole, destruction kills, exits learned without
// polling.

#define BOOST_TEST_MODULE process
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/process.hpp"

using namespace alb;
using namespace std::chrono_literals;

namespace {

// Whether `pid` exists and is not a zombie (an orphan's zombie may wait
// for a PID 1 that does not reap).
bool alive(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/stat"};
  std::string line;
  if (!std::getline(in, line))
    return false;
  auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size()
         && line[close + 2] != 'Z';
}

// Waits (bounded) until no process `pid` exists.
bool wait_gone(pid_t pid) {
  for (int i = 0; i < 500; ++i) {
    if (!alive(pid))
      return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

// Reads a pid the child writes to a pipe.
pid_t read_pid(int fd) {
  std::string s;
  char c;
  while (::read(fd, &c, 1) == 1 && c != '\n')
    s += c;
  return s.empty() ? -1 : static_cast<pid_t>(std::stol(s));
}

process start(std::vector<std::string> argv, int out = -1) {
  spawn_options o;
  o.argv = std::move(argv);
  o.stdout_fd = out;
  std::string error;
  auto p = process::spawn(o, error);
  BOOST_REQUIRE_MESSAGE(p.running(), error);
  return p;
}

} // namespace

BOOST_AUTO_TEST_CASE(exit_statuses_are_those_of_the_child) {
  auto a = start({"true"});
  auto sa = a.wait();
  BOOST_TEST(WIFEXITED(sa));
  BOOST_TEST(WEXITSTATUS(sa) == 0);
  auto b = start({"sh", "-c", "exit 3"});
  auto sb = b.wait();
  BOOST_TEST(WEXITSTATUS(sb) == 3);
  auto c = start({"sh", "-c", "kill -TERM $$"});
  auto sc = c.wait();
  BOOST_TEST(WIFSIGNALED(sc));
  BOOST_TEST(WTERMSIG(sc) == SIGTERM);
  BOOST_TEST(!c.running());
}

BOOST_AUTO_TEST_CASE(start_errors_are_reported_not_run) {
  spawn_options o;
  std::string error;
  o.argv = {"/nonexistent/binary"};
  auto a = process::spawn(o, error);
  BOOST_TEST(!a.running());
  BOOST_TEST(error.find("/nonexistent/binary") != std::string::npos);
  o.argv = {"no-such-command-alb"};
  error.clear();
  auto b = process::spawn(o, error);
  BOOST_TEST(!b.running());
  BOOST_TEST(error.find("not found") != std::string::npos);
  o.argv = {"true"};
  o.cwd = "/nonexistent-dir";
  error.clear();
  auto c = process::spawn(o, error);
  BOOST_TEST(!c.running());
  BOOST_TEST(error.find("/nonexistent-dir") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(environment_directory_and_output_apply) {
  int fds[2];
  BOOST_REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  spawn_options o;
  o.argv = {"sh", "-c", "echo \"$(pwd) $ALB_X\""};
  auto env = current_environment();
  env["ALB_X"] = "y";
  o.env = environment_strings(env);
  o.cwd = "/tmp";
  o.stdout_fd = fds[1];
  std::string error;
  auto p = process::spawn(o, error);
  ::close(fds[1]);
  BOOST_REQUIRE(p.running());
  std::string out;
  char buf[256];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof(buf))) > 0)
    out.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  BOOST_TEST(out == "/tmp y\n");
  BOOST_TEST(WEXITSTATUS(p.wait()) == 0);
}

BOOST_AUTO_TEST_CASE(destroying_a_running_child_kills_its_whole_group) {
  int fds[2];
  BOOST_REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  pid_t leader, grandchild;
  {
    auto p = start({"sh", "-c", "sleep 300 & echo $!; wait"}, fds[1]);
    ::close(fds[1]);
    leader = p.pid();
    grandchild = read_pid(fds[0]);
    BOOST_REQUIRE(grandchild > 0);
    BOOST_REQUIRE(alive(grandchild));
  }
  ::close(fds[0]);
  BOOST_TEST(wait_gone(leader));
  BOOST_TEST(wait_gone(grandchild));
}

BOOST_AUTO_TEST_CASE(a_leader_that_ends_takes_its_group_with_it) {
  int fds[2];
  BOOST_REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  // The leader leaves a background child behind and exits at once.
  auto p = start({"sh", "-c", "sleep 300 & echo $!"}, fds[1]);
  ::close(fds[1]);
  auto grandchild = read_pid(fds[0]);
  ::close(fds[0]);
  BOOST_REQUIRE(grandchild > 0);
  BOOST_TEST(WEXITSTATUS(p.wait()) == 0);
  BOOST_TEST(wait_gone(grandchild));
}

BOOST_AUTO_TEST_CASE(the_reaper_calls_back_when_a_child_ends) {
  std::mutex m;
  std::condition_variable cv;
  int calls = 0;
  auto p = start({"sh", "-c", "sleep 0.05"});
  child_reaper::instance().watch(p, [&] {
    std::lock_guard<std::mutex> g{m};
    ++calls;
    cv.notify_all();
  });
  std::unique_lock<std::mutex> lk{m};
  BOOST_REQUIRE(cv.wait_for(lk, 10s, [&] { return calls > 0; }));
  lk.unlock();
  // Not reaped by the reaper: the owner gets the status.
  auto s = p.try_wait();
  BOOST_REQUIRE(s.has_value());
  BOOST_TEST(WEXITSTATUS(*s) == 0);
}

namespace {

process start_contained(std::vector<std::string> argv, int out = -1) {
  spawn_options o;
  o.argv = std::move(argv);
  o.stdout_fd = out;
  o.contain = true;
  std::string error;
  auto p = process::spawn(o, error);
  BOOST_REQUIRE_MESSAGE(p.running(), error);
  return p;
}

} // namespace

BOOST_AUTO_TEST_CASE(a_contained_child_exits_as_its_command_did) {
  auto a = start_contained({"sh", "-c", "exit 3"});
  BOOST_TEST(WEXITSTATUS(a.wait()) == 3);
  auto b = start_contained({"sh", "-c", "kill -USR2 $$"});
  auto sb = b.wait();
  BOOST_TEST(WIFSIGNALED(sb));
  BOOST_TEST(WTERMSIG(sb) == SIGUSR2);
  auto c = start_contained({"true"});
  BOOST_TEST(WIFEXITED(c.wait()));
}

BOOST_AUTO_TEST_CASE(a_contained_child_reports_start_errors) {
  spawn_options o;
  o.contain = true;
  std::string error;
  o.argv = {"true"};
  o.cwd = "/nonexistent-dir";
  auto a = process::spawn(o, error);
  BOOST_TEST(!a.running());
  BOOST_TEST(error.find("/nonexistent-dir") != std::string::npos);
  // An executable file that is no program: exec itself fails.
  char tmpl[] = "/tmp/alb-noexec-XXXXXX";
  int fd = ::mkstemp(tmpl);
  BOOST_REQUIRE(fd >= 0);
  BOOST_REQUIRE(::write(fd, "\x01\x02\x03\x04", 4) == 4);
  ::close(fd);
  ::chmod(tmpl, 0700);
  o.cwd.clear();
  o.argv = {tmpl};
  error.clear();
  auto b = process::spawn(o, error);
  ::unlink(tmpl);
  BOOST_TEST(!b.running());
  BOOST_TEST(error.find("Exec format error") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(nothing_a_contained_command_started_outlives_its_end) {
  int fds[2];
  BOOST_REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  // The command leaves a background child and a setsid grandchild behind
  // and exits at once: a process-group kill alone misses the second.
  auto p = start_contained(
    {"sh", "-c", "sleep 300 & echo $!; setsid sleep 301 & echo $!"}, fds[1]);
  ::close(fds[1]);
  auto bg = read_pid(fds[0]);
  auto escaped = read_pid(fds[0]);
  ::close(fds[0]);
  BOOST_REQUIRE(bg > 0);
  BOOST_REQUIRE(escaped > 0);
  BOOST_TEST(WEXITSTATUS(p.wait()) == 0);
  BOOST_TEST(!alive(bg));
  BOOST_TEST(!alive(escaped));
}

BOOST_AUTO_TEST_CASE(stopping_a_contained_command_stops_its_whole_tree) {
  int fds[2];
  BOOST_REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  auto p = start_contained(
    {"sh", "-c", "setsid sh -c 'sleep 302 & echo $!; wait' & wait"}, fds[1]);
  ::close(fds[1]);
  auto deep = read_pid(fds[0]);
  ::close(fds[0]);
  BOOST_REQUIRE(deep > 0);
  BOOST_REQUIRE(alive(deep));
  p.stop();
  auto s = p.wait();
  BOOST_TEST(WIFSIGNALED(s));
  BOOST_TEST(WTERMSIG(s) == SIGKILL);
  BOOST_TEST(!alive(deep));
}

BOOST_AUTO_TEST_CASE(an_uncontained_setsid_grandchild_escapes_the_group_kill) {
  // The reason containment exists: without it a setsid child survives.
  int fds[2];
  BOOST_REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  // The pid is printed from inside the new session, so the group kill that
  // ends the command cannot catch the child before it has called setsid.
  auto p
    = start({"sh", "-c", "setsid sh -c 'echo $$; exec sleep 303' &"}, fds[1]);
  ::close(fds[1]);
  auto escaped = read_pid(fds[0]);
  ::close(fds[0]);
  BOOST_REQUIRE(escaped > 0);
  p.wait();
  BOOST_TEST(alive(escaped));
  ::kill(escaped, SIGKILL);
}

namespace {

// Waits (bounded) for the supervisor's outcome.
std::optional<supervisor::outcome> outcome_of(supervisor& s) {
  for (int i = 0; i < 1000; ++i) {
    pollfd p{s.fd(), POLLIN, 0};
    if (::poll(&p, 1, 10) > 0)
      if (auto o = s.take())
        return o;
  }
  return std::nullopt;
}

} // namespace

BOOST_AUTO_TEST_CASE(a_supervisor_runs_commands_one_after_another) {
  std::string error;
  auto s = supervisor::start(error);
  BOOST_REQUIRE_MESSAGE(s, error);
  spawn_options o;
  o.argv = {"sh", "-c", "exit 4"};
  BOOST_REQUIRE(s->run(o, error));
  auto a = outcome_of(*s);
  BOOST_REQUIRE(a.has_value());
  BOOST_TEST(a->error.empty());
  BOOST_TEST(WEXITSTATUS(a->status) == 4);
  // The same supervisor again, with its own environment and directory.
  int fds[2];
  BOOST_REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  o.argv = {"sh", "-c", "echo \"$(pwd) $ALB_S\""};
  o.env = {"ALB_S=z", "PATH=/usr/bin:/bin"};
  o.cwd = "/tmp";
  o.stdout_fd = fds[1];
  BOOST_REQUIRE(s->run(o, error));
  ::close(fds[1]);
  std::string out;
  char buf[256];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof(buf))) > 0)
    out.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  auto b = outcome_of(*s);
  BOOST_REQUIRE(b.has_value());
  BOOST_TEST(WEXITSTATUS(b->status) == 0);
  BOOST_TEST(out == "/tmp z\n");
  // A directory that does not exist: reported, not run.
  o.cwd = "/nonexistent-dir";
  o.stdout_fd = -1;
  BOOST_REQUIRE(s->run(o, error));
  auto c = outcome_of(*s);
  BOOST_REQUIRE(c.has_value());
  BOOST_TEST(c->error.find("directory") != std::string::npos);
  BOOST_TEST(s->alive());
}

BOOST_AUTO_TEST_CASE(a_supervisor_leaves_nothing_of_a_command_behind) {
  std::string error;
  auto s = supervisor::start(error);
  BOOST_REQUIRE(s);
  int fds[2];
  BOOST_REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  spawn_options o;
  o.argv = {"sh", "-c", "sleep 300 & echo $!; setsid sleep 301 & echo $!"};
  o.stdout_fd = fds[1];
  BOOST_REQUIRE(s->run(o, error));
  ::close(fds[1]);
  auto bg = read_pid(fds[0]);
  auto escaped = read_pid(fds[0]);
  ::close(fds[0]);
  BOOST_REQUIRE(bg > 0);
  BOOST_REQUIRE(escaped > 0);
  auto a = outcome_of(*s);
  BOOST_REQUIRE(a.has_value());
  BOOST_TEST(!alive(bg));
  BOOST_TEST(!alive(escaped));
  // Stopped mid-run: the whole tree goes, the outcome is a SIGKILL.
  BOOST_REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  o.argv = {"sh", "-c", "setsid sh -c 'sleep 302 & echo $!; wait' & wait"};
  o.stdout_fd = fds[1];
  BOOST_REQUIRE(s->run(o, error));
  ::close(fds[1]);
  auto deep = read_pid(fds[0]);
  ::close(fds[0]);
  BOOST_REQUIRE(deep > 0);
  s->stop();
  auto b = outcome_of(*s);
  BOOST_REQUIRE(b.has_value());
  BOOST_TEST(WIFSIGNALED(b->status));
  BOOST_TEST(!alive(deep));
  // Destroyed mid-run: the same.
  BOOST_REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  o.argv = {"sh", "-c", "setsid sleep 303 & echo $!; wait"};
  o.stdout_fd = fds[1];
  BOOST_REQUIRE(s->run(o, error));
  ::close(fds[1]);
  auto last = read_pid(fds[0]);
  ::close(fds[0]);
  BOOST_REQUIRE(last > 0);
  s.reset();
  BOOST_TEST(wait_gone(last));
}

BOOST_AUTO_TEST_CASE(run_to_end_captures_output_and_exit_status) {
  // What gnuplot and nvidia-smi go through.
  spawn_options o;
  o.argv = {"sh", "-c", "echo out; echo err >&2; exit 3"};
  auto r = run_to_end(o);
  BOOST_TEST(r.error.empty());
  BOOST_TEST(r.exit_code() == 3);
  BOOST_TEST(r.output.find("out\n") != std::string::npos);
  BOOST_TEST(r.output.find("err\n") != std::string::npos);
  o.argv = {"sh", "-c", "kill -TERM $$"};
  BOOST_TEST(run_to_end(o).exit_code() == 128 + SIGTERM);
  // Output past the cap is read (the child does not block) but not kept.
  o.argv = {"sh", "-c", "head -c 100000 /dev/zero"};
  r = run_to_end(o, 10);
  BOOST_TEST(r.exit_code() == 0);
  BOOST_TEST(r.output.size() == 10u);
  o.argv = {"/nonexistent/alb-no-such-program"};
  r = run_to_end(o);
  BOOST_TEST(!r.error.empty());
  BOOST_TEST(r.exit_code() == -1);
}

BOOST_AUTO_TEST_CASE(run_to_end_stops_a_hung_command_and_can_drop_stderr) {
  // What the node's nvidia-smi and python3 probes need: a driver that
  // hangs (here with a child holding the pipe) must not hang the node.
  spawn_options o;
  o.argv = {"sh", "-c", "echo partial; sleep 300 & sleep 301"};
  auto r = run_to_end(o, 1 << 20, 0.3);
  BOOST_TEST(r.timed_out);
  BOOST_TEST(r.exit_code() == 128 + SIGKILL);
  BOOST_TEST(r.output == "partial\n");
  int devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  o.argv = {"sh", "-c", "echo out; echo err >&2"};
  o.stderr_fd = devnull;
  r = run_to_end(o, 1 << 20, 10);
  ::close(devnull);
  BOOST_TEST(!r.timed_out);
  BOOST_TEST(r.exit_code() == 0);
  BOOST_TEST(r.output == "out\n");
}
