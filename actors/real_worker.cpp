#include "actors/real_worker.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <map>
#include <unordered_map>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

extern char** environ;

namespace alb {

namespace {

using std::chrono::duration;
using std::chrono::duration_cast;
using clock_type = std::chrono::steady_clock;

// finish_atom sequence numbers: plain numbers end simulated tests; the top
// bit marks a timeout check of a running child; all ones is the poll timer.
constexpr uint64_t timeout_bit = uint64_t{1} << 63;
constexpr uint64_t poll_seq = ~uint64_t{0};

caf::timespan span(double seconds) {
  return duration_cast<caf::timespan>(duration<double>(seconds));
}

// -- child processes ----------------------------------------------------------

struct child_start {
  pid_t pid = -1;
  int out_fd = -1;
  std::string error;
};

// Writes `msg` to `fd` from the forked child (async-signal-safe).
void child_say(int fd, const char* a, const char* b) {
  auto put = [fd](const char* s) {
    auto n = std::strlen(s);
    while (n > 0) {
      auto k = ::write(fd, s, n);
      if (k <= 0)
        return;
      s += k;
      n -= static_cast<size_t>(k);
    }
  };
  put("alb: ");
  put(a);
  put(": ");
  put(b);
  put("\n");
}

// Starts `item.command` in a new process group. Everything the child needs
// is prepared before fork: between fork and exec only async-signal-safe
// calls are allowed in a multi-threaded process.
child_start start_child(const work_item& item) {
  child_start r;
  char tmpl[] = "/tmp/alb-out-XXXXXX";
  int fd = ::mkostemp(tmpl, O_CLOEXEC);
  if (fd < 0) {
    r.error = std::string{"cannot create output file: "} + std::strerror(errno);
    return r;
  }
  // Unlinked at once: the descriptor is all we need, and nothing is left
  // behind if this process dies.
  ::unlink(tmpl);
  std::vector<std::string> args = item.command;
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  std::map<std::string, std::string> env_map;
  for (char** e = environ; e && *e; ++e) {
    std::string kv{*e};
    auto eq = kv.find('=');
    if (eq != std::string::npos)
      env_map[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (auto& [k, v] : item.env)
    env_map[k] = v;
  std::vector<std::string> env_strs;
  env_strs.reserve(env_map.size());
  for (auto& [k, v] : env_map)
    env_strs.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strs)
    envp.push_back(s.data());
  envp.push_back(nullptr);
  const char* cwd = item.cwd.empty() ? nullptr : item.cwd.c_str();
  auto parent = ::getpid();
  auto pid = ::fork();
  if (pid < 0) {
    r.error = std::string{"fork failed: "} + std::strerror(errno);
    ::close(fd);
    return r;
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    // The node blocks SIGINT/SIGTERM to wait for them; tests get the
    // default signal set back.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    // A command outliving a SIGKILLed node would keep running unseen.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent)
      ::_exit(127);
    int in = ::open("/dev/null", O_RDONLY);
    if (in >= 0)
      ::dup2(in, 0);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    // Inherited sockets (the node's connection to the coordinator) would
    // keep that connection open after the node died.
    if (::syscall(SYS_close_range, 3U, ~0U, 0U) != 0) {
      for (int i = 3; i < 4096; ++i)
        ::close(i);
    }
    if (cwd && ::chdir(cwd) != 0) {
      child_say(2, cwd, std::strerror(errno));
      ::_exit(127);
    }
    ::execvpe(argv[0], argv.data(), envp.data());
    child_say(2, argv[0], std::strerror(errno));
    ::_exit(127);
  }
  // Also set in the parent so a kill right after fork reaches the group.
  ::setpgid(pid, pid);
  r.pid = pid;
  r.out_fd = fd;
  return r;
}

std::string read_tail(int fd, size_t n) {
  struct stat st;
  if (::fstat(fd, &st) != 0 || st.st_size <= 0)
    return {};
  auto size = static_cast<size_t>(st.st_size);
  auto len = std::min(size, n);
  std::string s(len, '\0');
  auto got = ::pread(fd, s.data(), len, static_cast<off_t>(size - len));
  s.resize(got > 0 ? static_cast<size_t>(got) : 0);
  return s;
}

void kill_and_reap(pid_t pid) {
  ::kill(-pid, SIGKILL);
  int status;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    // retry
  }
}

// -- the actor ----------------------------------------------------------------

struct running_test {
  work_item item;
  /// Child pid, or -1 for a simulated test.
  pid_t pid = -1;
  int out_fd = -1;
  clock_type::time_point started;
  double queued_seconds = 0;
  bool timed_out = false;
};

struct queued_test {
  work_item item;
  clock_type::time_point received;
};

struct real_worker_state {
  static inline const char* name = "alb.real_worker";

  real_worker_options opts;
  scheduler_actor scheduler;
  uint32_t slot = 0;
  bool joined = false;
  int slots = 1;
  uint64_t next_seq = 0;
  bool polling = false;
  std::deque<queued_test> queue;
  std::unordered_map<uint64_t, running_test> running;
  std::vector<work_report> out;

  ~real_worker_state() {
    // Whatever still runs dies with the worker.
    for (auto& [seq, t] : running) {
      if (t.pid > 0)
        kill_and_reap(t.pid);
      if (t.out_fd >= 0)
        ::close(t.out_fd);
    }
  }
};

using real_worker_impl = worker_actor::stateful_pointer<real_worker_state>;

void flush(real_worker_impl self) {
  auto& st = self->state;
  if (st.out.empty() || !st.joined)
    return;
  report_batch b;
  b.slot = st.slot;
  b.items.swap(st.out);
  if (st.opts.uplink)
    self->send(st.opts.uplink, std::move(b));
  else
    self->send(st.scheduler, std::move(b));
}

void finish(real_worker_impl self, running_test& t, int status) {
  auto& st = self->state;
  work_report r;
  r.ref = t.item.ref;
  r.gen = t.item.gen;
  r.queued_seconds = t.queued_seconds;
  r.exec_seconds = duration<double>(clock_type::now() - t.started).count();
  if (t.pid < 0) {
    r.success = true;
  } else {
    r.output_tail = read_tail(t.out_fd, st.opts.tail_bytes);
    ::close(t.out_fd);
    t.out_fd = -1;
    if (t.timed_out) {
      r.success = false;
      r.timed_out = true;
      r.exit_code = -1;
      char buf[64];
      std::snprintf(buf, sizeof(buf), "timed out after %g s", t.item.timeout);
      r.error = buf;
    } else if (WIFEXITED(status)) {
      r.exit_code = WEXITSTATUS(status);
      r.success = r.exit_code == 0;
      if (!r.success)
        r.error = "exit status " + std::to_string(r.exit_code);
    } else if (WIFSIGNALED(status)) {
      r.exit_code = 128 + WTERMSIG(status);
      r.success = false;
      r.error = "killed by signal " + std::to_string(WTERMSIG(status));
    }
  }
  st.out.push_back(std::move(r));
}

void schedule_poll(real_worker_impl self) {
  auto& st = self->state;
  if (st.polling)
    return;
  st.polling = true;
  self->delayed_send(self, span(st.opts.poll_interval), finish_atom::value,
                     poll_seq);
}

void start_more(real_worker_impl self) {
  auto& st = self->state;
  auto now = clock_type::now();
  while (!st.queue.empty() && static_cast<int>(st.running.size()) < st.slots) {
    auto q = std::move(st.queue.front());
    st.queue.pop_front();
    running_test t;
    t.queued_seconds = duration<double>(now - q.received).count();
    t.started = now;
    t.item = std::move(q.item);
    auto seq = st.next_seq++;
    if (t.item.command.empty()) {
      if (t.item.expected_duration <= 0) {
        finish(self, t, 0);
        continue;
      }
      auto d = t.item.expected_duration;
      st.running.emplace(seq, std::move(t));
      self->delayed_send(self, span(d), finish_atom::value, seq);
      continue;
    }
    auto c = start_child(t.item);
    if (c.pid < 0) {
      work_report r;
      r.ref = t.item.ref;
      r.gen = t.item.gen;
      r.success = false;
      r.exit_code = 127;
      r.error = c.error;
      st.out.push_back(std::move(r));
      continue;
    }
    t.pid = c.pid;
    t.out_fd = c.out_fd;
    auto timeout = t.item.timeout;
    st.running.emplace(seq, std::move(t));
    if (timeout > 0)
      self->delayed_send(self, span(timeout), finish_atom::value,
                         seq | timeout_bit);
    schedule_poll(self);
  }
}

// Reaps children that ended; returns whether any are still running.
bool poll_children(real_worker_impl self) {
  auto& st = self->state;
  bool any = false;
  for (auto i = st.running.begin(); i != st.running.end();) {
    auto& t = i->second;
    if (t.pid < 0) {
      ++i;
      continue;
    }
    int status = 0;
    auto r = ::waitpid(t.pid, &status, WNOHANG);
    if (r == 0) {
      any = true;
      ++i;
      continue;
    }
    if (r < 0)
      status = 0; // already gone (should not happen): report what we have
    // The group may hold grandchildren still; they go with their leader.
    ::kill(-t.pid, SIGKILL);
    finish(self, t, status);
    i = st.running.erase(i);
  }
  return any;
}

void send_load(real_worker_impl self) {
  auto& st = self->state;
  worker_load l;
  l.worker_id = st.opts.caps.worker_id;
  l.active_tests = static_cast<int>(st.running.size());
  l.queued_tests = static_cast<int>(st.queue.size());
  l.queue_depth = l.active_tests + l.queued_tests;
  l.cpu_utilization
    = std::min(100.0, 100.0 * l.active_tests / std::max(1, st.slots));
  self->send(st.scheduler, load_report{st.slot, std::move(l)});
}

void on_joined(real_worker_impl self, uint32_t slot) {
  auto& st = self->state;
  st.slot = slot;
  st.joined = true;
  if (st.opts.on_joined)
    st.opts.on_joined(slot);
  flush(self);
  self->delayed_send(self, span(st.opts.report_interval), tick_atom::value);
}

worker_actor::behavior_type real_worker_behavior(real_worker_impl self,
                                                 scheduler_actor scheduler,
                                                 real_worker_options opts) {
  auto& st = self->state;
  st.opts = std::move(opts);
  st.scheduler = scheduler;
  st.slots = st.opts.caps.max_concurrent_tests > 0
               ? st.opts.caps.max_concurrent_tests
               : std::max(1, st.opts.caps.cpu_cores);
  // Losing the scheduler (or the coordinator, hence the connection) ends
  // the worker: there is nobody to report to.
  self->set_down_handler([self](caf::down_msg& dm) { self->quit(dm.reason); });
  auto me = caf::actor_cast<worker_actor>(self);
  if (st.opts.coordinator) {
    self->monitor(st.opts.coordinator);
    if (st.opts.uplink) {
      // Announced before the join request leaves: the uplink knows this
      // worker before any placement for it can arrive there.
      self->monitor(st.opts.uplink);
      self->send(st.opts.uplink, join_atom::value);
    }
    node_join j{st.opts.token, st.opts.node, st.opts.caps, st.opts.uplink};
    self
      ->request(st.opts.coordinator, caf::infinite, join_atom::value,
                std::move(j), me)
      .then(
        [self](uint32_t slot, scheduler_actor& sched) {
          self->state.scheduler = sched;
          self->monitor(sched);
          if (self->state.opts.uplink)
            self->send(self->state.opts.uplink, join_atom::value, sched);
          on_joined(self, slot);
        },
        [self](caf::error& e) { self->quit(std::move(e)); });
  } else {
    self->monitor(scheduler);
    self->request(scheduler, caf::infinite, join_atom::value, st.opts.caps, me)
      .then([self](uint32_t slot) { on_joined(self, slot); },
            [self](caf::error& e) { self->quit(std::move(e)); });
  }
  return {
    [self](work_batch& b) {
      auto& st = self->state;
      auto now = clock_type::now();
      for (auto& item : b.items)
        st.queue.push_back(queued_test{std::move(item), now});
      start_more(self);
      flush(self);
    },
    [self](cancel_atom, uint32_t ref, uint32_t gen) {
      auto& st = self->state;
      for (auto i = st.queue.begin(); i != st.queue.end(); ++i) {
        if (i->item.ref == ref && i->item.gen == gen) {
          st.queue.erase(i);
          return;
        }
      }
      for (auto i = st.running.begin(); i != st.running.end(); ++i) {
        auto& t = i->second;
        if (t.item.ref == ref && t.item.gen == gen) {
          // The scheduler withdrew it: no report.
          if (t.pid > 0)
            kill_and_reap(t.pid);
          if (t.out_fd >= 0)
            ::close(t.out_fd);
          st.running.erase(i);
          start_more(self);
          flush(self);
          return;
        }
      }
    },
    [self](finish_atom, uint64_t seq) {
      auto& st = self->state;
      if (seq == poll_seq) {
        st.polling = false;
        if (poll_children(self))
          schedule_poll(self);
      } else if (seq & timeout_bit) {
        auto i = st.running.find(seq & ~timeout_bit);
        if (i == st.running.end() || i->second.pid < 0)
          return;
        // Killed here, reaped and reported by the next poll.
        i->second.timed_out = true;
        ::kill(-i->second.pid, SIGKILL);
        schedule_poll(self);
        return;
      } else {
        auto i = st.running.find(seq);
        if (i == st.running.end())
          return;
        finish(self, i->second, 0);
        st.running.erase(i);
      }
      start_more(self);
      flush(self);
    },
    [self](tick_atom) {
      auto& st = self->state;
      send_load(self);
      self->delayed_send(self, span(st.opts.report_interval), tick_atom::value);
    },
    [self](leave_atom) {
      auto& st = self->state;
      // Through the uplink when there is one, so the leave follows the
      // reports it still holds.
      if (st.joined && st.opts.uplink)
        self->send(st.opts.uplink, leave_atom::value, st.slot);
      else if (st.joined)
        self->send(st.scheduler, leave_atom::value, st.slot);
      self->quit();
    },
  };
}

} // namespace

worker_actor spawn_real_worker(caf::actor_system& sys,
                               scheduler_actor scheduler,
                               real_worker_options opts) {
  return sys.spawn(real_worker_behavior, std::move(scheduler), std::move(opts));
}

} // namespace alb
