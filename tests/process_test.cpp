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
#include <signal.h>
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
