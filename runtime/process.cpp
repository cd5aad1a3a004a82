#include "runtime/process.hpp"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif

#if defined(__x86_64__)
// clone3 that runs fn(arg) in the child on the stack given in the
// arguments and exits with its result: glibc has no public clone3, and
// with CLONE_VM a C caller cannot return from the system call into its own
// frame in the child (the child gets the new stack). The child keeps every
// register but rax, rcx and r11, so fn and arg travel in r8 and r9.
// Returns the child's pid, or -errno.
extern "C" long alb_clone3_run(void* args, unsigned long size, int (*fn)(void*),
                               void* arg);
asm(R"(
  .text
  .globl alb_clone3_run
  .hidden alb_clone3_run
  .type alb_clone3_run, @function
alb_clone3_run:
  .cfi_startproc
  mov %rdx, %r8
  mov %rcx, %r9
  mov $435, %eax
  syscall
  test %rax, %rax
  jz 1f
  ret
1:
  .cfi_undefined rip
  xor %ebp, %ebp
  mov %r9, %rdi
  call *%r8
  mov %eax, %edi
  mov $60, %eax
  syscall
  hlt
  .cfi_endproc
  .size alb_clone3_run, .-alb_clone3_run
)");
#define ALB_HAVE_CLONE3_RUN 1
#endif

extern char** environ;

namespace alb {

namespace {

// Everything the child needs, prepared before the clone: the child shares
// our memory until it execs and may only make plain system calls.
struct child_args {
  const char* path = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const char* cwd = nullptr;
  int in = -1;
  int out = -1;
  int err = -1;
  bool new_group = true;
  bool die_with_parent = true;
  bool close_others = true;
  /// cgroup.procs of the cgroup to join before exec (-1 = none).
  int cgroup = -1;
  /// That cgroup's directory, to be born in it (-1 = none: join it).
  int cgroup_dir = -1;
  /// Set by the parent before the clone: the child is born in its cgroup
  /// (clone3 with CLONE_INTO_CGROUP), so it has nothing to join.
  bool born_in_cgroup = false;
  /// Set by the child first thing: it ran (a child the kernel killed at
  /// birth never does).
  bool ran = false;
  pid_t parent = 0;
  /// Set by the child when it could not exec (it exits with 127 then).
  int error = 0;
  /// What failed: 1 = exec, 2 = chdir, 3 = setup, 4 = joining the cgroup.
  int stage = 0;
};

// Runs in a freshly cloned child (async-signal-safe calls only): handlers
// of the parent must not run there, so caught signals go back to their
// default (ignored ones stay ignored, as exec would keep them), and SIGPIPE,
// which many servers ignore, is reset because a test expects the default.
// Supervisors also reset SIGCHLD, since they reap the command themselves.
void reset_signal_handlers(bool with_sigchld) {
  struct sigaction def;
  std::memset(&def, 0, sizeof(def));
  def.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    struct sigaction old;
    if (::sigaction(sig, nullptr, &old) != 0)
      continue;
    if (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN)
      ::sigaction(sig, &def, nullptr);
  }
  if (with_sigchld)
    ::sigaction(SIGCHLD, &def, nullptr);
  ::sigaction(SIGPIPE, &def, nullptr);
}

int child_main(void* p) {
  auto* a = static_cast<child_args*>(p);
  a->ran = true;
  reset_signal_handlers(false);
  if (a->new_group && ::setpgid(0, 0) != 0) {
    a->error = errno;
    a->stage = 3;
    ::_exit(127);
  }
  if (a->die_with_parent) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    // The parent may have died before the line above.
    if (::getppid() != a->parent)
      ::_exit(127);
  }
  // Before anything can start: "0" moves the writer, this child, so what
  // it execs and all that starts are in the cgroup from the first
  // instruction on (unless it was born there, which costs the kernel far
  // less than a migration).
  if (a->cgroup >= 0 && !a->born_in_cgroup && ::write(a->cgroup, "0", 1) != 1) {
    a->error = errno;
    a->stage = 4;
    ::_exit(127);
  }
  int in = a->in;
  if (in < 0)
    in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (in >= 0 && in != 0)
    ::dup2(in, 0);
  if (a->out >= 0 && a->out != 1)
    ::dup2(a->out, 1);
  if (a->err >= 0 && a->err != 2)
    ::dup2(a->err, 2);
  // Inherited sockets (a node's connection to its coordinator) would keep
  // that connection open after the node died.
  if (a->close_others && ::syscall(SYS_close_range, 3U, ~0U, 0U) != 0) {
    for (int fd = 3; fd < 4096; ++fd)
      ::close(fd);
  }
  if (a->cwd && ::chdir(a->cwd) != 0) {
    a->error = errno;
    a->stage = 2;
    ::_exit(127);
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execve(a->path, a->argv, a->envp);
  a->error = errno;
  a->stage = 1;
  ::_exit(127);
}

bool executable(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)
         && ::access(path.c_str(), X_OK) == 0;
}

// PATH lookup as execvp does it, done before the clone (the child must not
// allocate).
std::string resolve(const std::string& prog,
                    const std::vector<std::string>& env) {
  if (prog.find('/') != std::string::npos)
    return prog;
  std::string path;
  bool found = false;
  for (auto& kv : env) {
    if (kv.rfind("PATH=", 0) == 0) {
      path = kv.substr(5);
      found = true;
    }
  }
  if (!found) {
    auto* p = ::getenv("PATH");
    path = p ? p : "/usr/local/bin:/usr/bin:/bin";
  }
  size_t b = 0;
  while (b <= path.size()) {
    auto e = path.find(':', b);
    if (e == std::string::npos)
      e = path.size();
    auto dir = path.substr(b, e - b);
    auto cand = (dir.empty() ? std::string{"."} : dir) + "/" + prog;
    if (executable(cand))
      return cand;
    b = e + 1;
  }
  return {};
}

// Converts what waitid says into a waitpid-style status.
int status_of(const siginfo_t& info) {
  switch (info.si_code) {
    case CLD_EXITED:
      return (info.si_status & 0xff) << 8;
    case CLD_DUMPED:
      return (info.si_status & 0x7f) | 0x80;
    default:
      return info.si_status & 0x7f;
  }
}

/// Stack of a child until it execs (one per spawning thread, supervisor
/// or pool).
constexpr size_t child_stack_size = 64 * 1024;

// Whether clone3 may put children in their cgroup: cleared for good when
// the kernel refuses clone3 or CLONE_INTO_CGROUP (older than 5.7, or a
// seccomp filter answering ENOSYS as container runtimes do), or by
// `set_born_in_cgroup(false)`.
std::atomic<bool> clone_into_cgroup{true};

struct clone3_args {
  uint64_t flags = 0;
  uint64_t pidfd = 0;
  uint64_t child_tid = 0;
  uint64_t parent_tid = 0;
  uint64_t exit_signal = 0;
  uint64_t stack = 0;
  uint64_t stack_size = 0;
  uint64_t tls = 0;
  uint64_t set_tid = 0;
  uint64_t set_tid_size = 0;
  uint64_t cgroup = 0;
};

// Starts child_main(a) vfork-like (sharing our memory, this thread waiting
// until it execs or exits) on the stack below `stack_top`, and returns its
// pid (its pidfd in `*pidfd` when not null), or -1 with errno. With a
// cgroup directory in `a`, the child is born in that cgroup where the
// kernel allows it; where it does not, the child joins through
// cgroup.procs as before. The caller blocks signals around it.
pid_t start_child(child_args* a, char* stack_top, size_t stack_size,
                  int* pidfd) {
#ifdef ALB_HAVE_CLONE3_RUN
  if (a->cgroup_dir >= 0 && clone_into_cgroup.load(std::memory_order_relaxed)) {
    clone3_args ca;
    ca.flags
      = CLONE_VM | CLONE_VFORK | CLONE_INTO_CGROUP | (pidfd ? CLONE_PIDFD : 0);
    ca.pidfd = reinterpret_cast<uintptr_t>(pidfd);
    ca.exit_signal = SIGCHLD;
    // A 16-byte aligned top, as the ABI wants it at a call, inside the
    // buffer.
    auto top = reinterpret_cast<uintptr_t>(stack_top) & ~uintptr_t{15};
    ca.stack_size = stack_size - 64;
    ca.stack = top - ca.stack_size;
    ca.cgroup = static_cast<uint64_t>(a->cgroup_dir);
    a->born_in_cgroup = true;
    a->ran = false;
    auto r = alb_clone3_run(&ca, sizeof(ca), child_main, a);
    if (r > 0 && a->ran)
      return static_cast<pid_t>(r);
    a->born_in_cgroup = false;
    if (r > 0) {
      // Killed before it ran: Linux 6.18 kills a child born in a cgroup
      // whose kill count (cgroup.kill) differs from that of its parent's
      // cgroup (test cgroups are never reused once killed, but the node's
      // own cgroup may have been killed before). Reaped, and started the
      // old way from now on.
      if (pidfd) {
        siginfo_t info;
        ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(*pidfd),
                 &info, WEXITED);
        ::close(*pidfd);
        *pidfd = -1;
      } else {
        ::waitpid(static_cast<pid_t>(r), nullptr, 0);
      }
      clone_into_cgroup.store(false, std::memory_order_relaxed);
      r = -ENOSYS;
    }
    // No clone3, or no CLONE_INTO_CGROUP (EINVAL: unknown flag, E2BIG:
    // larger arguments than the kernel knows): never again. Other
    // refusals (permission, a cgroup that takes no processes) go to the
    // fallback this time only: writing cgroup.procs then says why.
    if (r == -ENOSYS || r == -EINVAL || r == -E2BIG)
      clone_into_cgroup.store(false, std::memory_order_relaxed);
  }
#endif
  int flags = CLONE_VM | CLONE_VFORK | SIGCHLD | (pidfd ? CLONE_PIDFD : 0);
  return ::clone(child_main, stack_top, flags, a, pidfd);
}

// -- the supervisor of a contained child
// ---------------------------------------
//
// Runs in a fork-like copy of this process (no exec): only system calls, no
// allocation, no locks.

/// What the supervisor reports through its pipe when the command did not
/// start: the stage (as in child_args) and errno.
struct start_failure {
  int stage = 0;
  int error = 0;
};

struct supervisor_args {
  child_args child;
  /// Write end of the start pipe (close-on-exec).
  int report = -1;
  /// Stack for the command's vfork-like start.
  char* stack_top = nullptr;
};

// Decimal digits of `v` into `out` (no terminator); returns the length.
size_t put_uint(char* out, unsigned long v) {
  char tmp[24];
  size_t n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v > 0);
  for (size_t i = 0; i < n; ++i)
    out[i] = tmp[n - 1 - i];
  return n;
}

// SIGKILLs every child of this (single-threaded) process and its group.
void kill_children(const char* path) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return;
  char buf[4096];
  unsigned long v = 0;
  bool in_number = false;
  for (;;) {
    auto n = ::read(fd, buf, sizeof(buf));
    if (n <= 0)
      break;
    for (ssize_t i = 0; i < n; ++i) {
      char c = buf[i];
      if (c >= '0' && c <= '9') {
        v = v * 10 + static_cast<unsigned long>(c - '0');
        in_number = true;
      } else if (in_number) {
        ::kill(static_cast<pid_t>(v), SIGKILL);
        ::kill(-static_cast<pid_t>(v), SIGKILL);
        v = 0;
        in_number = false;
      }
    }
  }
  if (in_number) {
    ::kill(static_cast<pid_t>(v), SIGKILL);
    ::kill(-static_cast<pid_t>(v), SIGKILL);
  }
  ::close(fd);
}

[[noreturn]] void exit_as(int status) {
  if (WIFEXITED(status))
    ::_exit(WEXITSTATUS(status));
  int sig = WIFSIGNALED(status) ? WTERMSIG(status) : SIGKILL;
  // Die of the same signal (without a core file of this copy).
  struct rlimit none = {0, 0};
  ::setrlimit(RLIMIT_CORE, &none);
  struct sigaction def;
  std::memset(&def, 0, sizeof(def));
  def.sa_handler = SIG_DFL;
  ::sigaction(sig, &def, nullptr);
  sigset_t only;
  sigemptyset(&only);
  sigaddset(&only, sig);
  ::sigprocmask(SIG_UNBLOCK, &only, nullptr);
  ::kill(::getpid(), sig);
  ::_exit(128 + sig);
}

int supervisor_main(void* p) {
  auto* a = static_cast<supervisor_args*>(p);
  auto& c = a->child;
  // All signals stay blocked (as the parent blocked them for the clone):
  // they are taken with sigwaitinfo below. Handlers are reset for the
  // command, which starts from this process.
  reset_signal_handlers(true);
  start_failure fail;
  auto report_failure = [&](int stage, int err) {
    fail.stage = stage;
    fail.error = err;
    auto n = ::write(a->report, &fail, sizeof(fail));
    (void)n;
    ::_exit(127);
  };
  // The command's cgroup descriptors survive the dups and closes below as
  // fds 4 and 5 (copies above them first, so no dup overwrites them).
  int cgroup = c.cgroup >= 0 ? ::fcntl(c.cgroup, F_DUPFD_CLOEXEC, 16) : -1;
  if (c.cgroup >= 0 && cgroup < 0)
    report_failure(4, errno);
  int cgroup_dir
    = c.cgroup_dir >= 0 ? ::fcntl(c.cgroup_dir, F_DUPFD_CLOEXEC, 16) : -1;
  // Its own group: a kill of the command's group does not reach it.
  ::setpgid(0, 0);
  // The node dies (even SIGKILL): SIGTERM, taken below, stops the tree.
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != c.parent)
    ::_exit(127);
  // Orphans of the command's tree (setsid ones too) become its children.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  int in = c.in;
  if (in < 0)
    in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (in >= 0 && in != 0)
    ::dup2(in, 0);
  if (c.out >= 0 && c.out != 1)
    ::dup2(c.out, 1);
  if (c.err >= 0 && c.err != 2)
    ::dup2(c.err, 2);
  if (a->report != 3) {
    ::dup2(a->report, 3);
    a->report = 3;
  }
  ::fcntl(3, F_SETFD, FD_CLOEXEC);
  if (cgroup >= 0) {
    ::dup3(cgroup, 4, O_CLOEXEC);
    cgroup = 4;
  }
  if (cgroup_dir >= 0) {
    ::dup3(cgroup_dir, 5, O_CLOEXEC);
    cgroup_dir = 5;
  }
  if (::syscall(SYS_close_range, 6U, ~0U, 0U) != 0)
    for (int fd = 6; fd < 4096; ++fd)
      ::close(fd);
  if (c.cwd && ::chdir(c.cwd) != 0)
    report_failure(2, errno);
  auto self = ::getpid();
  child_args cmd = c;
  cmd.cgroup = cgroup;
  cmd.cgroup_dir = cgroup_dir;
  cmd.in = 0;
  cmd.out = 1;
  cmd.err = 2;
  cmd.cwd = nullptr;
  cmd.new_group = true;
  cmd.die_with_parent = true;
  cmd.close_others = true;
  cmd.parent = self;
  cmd.stage = 0;
  cmd.error = 0;
  auto leader = start_child(&cmd, a->stack_top, child_stack_size, nullptr);
  if (leader < 0)
    report_failure(3, errno);
  if (cmd.stage != 0)
    report_failure(cmd.stage, cmd.error);
  // Started: the parent reads end-of-file.
  ::close(3);
  char path[64] = "/proc/self/task/";
  size_t len = std::strlen(path);
  len += put_uint(path + len, static_cast<unsigned long>(self));
  std::memcpy(path + len, "/children", 10);
  sigset_t wanted;
  sigemptyset(&wanted);
  for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1})
    sigaddset(&wanted, sig);
  int status = 0;
  bool ended = false;
  while (!ended) {
    siginfo_t info;
    auto sig = ::sigwaitinfo(&wanted, &info);
    if (sig < 0)
      continue;
    if (sig == SIGCHLD) {
      // Orphans that ended are reaped as they come; the leader is only
      // looked at, so its group id stays reserved until the group dies.
      for (;;) {
        siginfo_t w;
        std::memset(&w, 0, sizeof(w));
        if (::waitid(P_ALL, 0, &w, WEXITED | WNOHANG | WNOWAIT) != 0
            || w.si_pid == 0)
          break;
        if (w.si_pid == leader) {
          ended = true;
          break;
        }
        ::waitpid(w.si_pid, nullptr, 0);
      }
    } else {
      // Stopped (timeout, cancel) or the node died: the command dies too.
      ::kill(-leader, SIGKILL);
      ended = true;
    }
  }
  ::kill(-leader, SIGKILL);
  bool leader_reaped = false;
  for (;;) {
    kill_children(path);
    int st = 0;
    auto r = ::waitpid(-1, &st, 0);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      break; // ECHILD: nothing of the tree is left
    }
    if (r == leader && !leader_reaped) {
      status = st;
      leader_reaped = true;
    }
  }
  exit_as(status);
}

// -- the long-lived supervisor
// -------------------------------------------------

/// Requests to a supervisor: run a command, or stop the one running.
enum : int32_t { request_run = 1, request_stop = 2 };

/// Header of a request; a run's strings follow (path, argv, env, cwd, each
/// NUL-terminated) and its stdout/stderr descriptors travel as SCM_RIGHTS.
struct request_header {
  int32_t type = 0;
  int32_t argc = 0;
  int32_t envc = 0;
  int32_t has_cwd = 0;
  /// A third descriptor travels along: the cgroup.procs to join.
  int32_t has_cgroup = 0;
  /// And a fourth (with a third only): that cgroup's directory, for the
  /// command to be born in it.
  int32_t has_cgroup_dir = 0;
};

/// What a supervisor answers when a command ended (or did not start).
struct reply {
  int32_t not_started = 0;
  int32_t stage = 0;
  int32_t error = 0;
  int32_t status = 0;
};

/// Bytes of strings a request may carry (one datagram).
constexpr size_t max_request = 192 * 1024;

struct pool_args {
  int sock = -1;
  pid_t parent = 0;
  char* stack_top = nullptr;
  /// Room for a request and its pointer arrays (this copy's own).
  char* buf = nullptr;
  size_t buf_size = 0;
};

// Kills the tree of `leader` (its group, then every descendant left) and
// returns the leader's wait status.
int kill_tree(pid_t leader, const char* children_path, bool ended = false) {
  ::kill(-leader, SIGKILL);
  int status = 0;
  if (ended) {
    // The leader is gone (a zombie): its children are this process's now.
    // None at all (most short tests): nothing of the tree is left, and
    // there is no /proc/.../children to read twice.
    ::waitpid(leader, &status, 0);
    siginfo_t w;
    std::memset(&w, 0, sizeof(w));
    if (::waitid(P_ALL, 0, &w, WEXITED | WNOHANG | WNOWAIT) != 0
        && errno == ECHILD)
      return status;
  }
  for (;;) {
    kill_children(children_path);
    int st = 0;
    auto r = ::waitpid(-1, &st, 0);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      break; // ECHILD: nothing of the tree is left
    }
    if (r == leader)
      status = st;
  }
  return status;
}

int pool_main(void* p) {
  auto* a = static_cast<pool_args*>(p);
  reset_signal_handlers(true);
  ::setpgid(0, 0);
  // The node dies (even SIGKILL): SIGTERM, taken below, stops the tree.
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != a->parent)
    ::_exit(0);
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  if (a->sock != 3) {
    ::dup2(a->sock, 3);
    a->sock = 3;
  }
  ::fcntl(3, F_SETFD, FD_CLOEXEC);
  sigset_t wanted;
  sigemptyset(&wanted);
  for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT})
    sigaddset(&wanted, sig);
  int sfd = ::signalfd(-1, &wanted, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0)
    ::_exit(0);
  if (sfd != 4) {
    ::dup2(sfd, 4);
    ::fcntl(4, F_SETFD, FD_CLOEXEC);
    ::close(sfd);
  }
  ::syscall(SYS_close_range, 5U, ~0U, 0U);
  auto self = ::getpid();
  char path[64] = "/proc/self/task/";
  size_t len = std::strlen(path);
  len += put_uint(path + len, static_cast<unsigned long>(self));
  std::memcpy(path + len, "/children", 10);
  pid_t leader = -1;
  auto send_reply = [](const reply& r) {
    while (::send(3, &r, sizeof(r), MSG_NOSIGNAL) < 0 && errno == EINTR) {
      // retry
    }
  };
  auto finish = [&] {
    reply r;
    r.status = kill_tree(leader, path, true);
    leader = -1;
    send_reply(r);
  };
  auto quit = [&] {
    if (leader > 0)
      kill_tree(leader, path);
    ::_exit(0);
  };
  for (;;) {
    pollfd fds[2] = {{3, POLLIN, 0}, {4, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0)
      continue;
    if (fds[1].revents & POLLIN) {
      signalfd_siginfo si;
      bool chld = false;
      while (::read(4, &si, sizeof(si)) == static_cast<ssize_t>(sizeof(si))) {
        if (si.ssi_signo == SIGCHLD)
          chld = true;
        else
          quit();
      }
      if (chld) {
        // Orphans that ended are reaped as they come; the leader is only
        // looked at, so its group id stays reserved until the group dies.
        for (;;) {
          siginfo_t w;
          std::memset(&w, 0, sizeof(w));
          if (::waitid(P_ALL, 0, &w, WEXITED | WNOHANG | WNOWAIT) != 0
              || w.si_pid == 0)
            break;
          if (w.si_pid == leader) {
            finish();
            break;
          }
          ::waitpid(w.si_pid, nullptr, 0);
        }
      }
    }
    if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR)))
      continue;
    int got[4] = {-1, -1, -1, -1};
    alignas(cmsghdr) char ctl[CMSG_SPACE(4 * sizeof(int))];
    iovec iov{a->buf, max_request};
    msghdr msg;
    std::memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl;
    msg.msg_controllen = sizeof(ctl);
    auto n = ::recvmsg(3, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (n <= 0)
      quit(); // the owner closed it (or is gone)
    for (auto* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
        std::memcpy(got, CMSG_DATA(c),
                    std::min(sizeof(got), c->cmsg_len - CMSG_LEN(0)));
    request_header h;
    if (static_cast<size_t>(n) < sizeof(h)) {
      for (int fd : got)
        if (fd >= 0)
          ::close(fd);
      continue;
    }
    std::memcpy(&h, a->buf, sizeof(h));
    if (h.type == request_stop) {
      if (leader > 0)
        ::kill(-leader, SIGKILL); // its end follows through SIGCHLD
      continue;
    }
    if (h.type != request_run || leader > 0 || h.argc < 1 || h.envc < 0) {
      for (int fd : got)
        if (fd >= 0)
          ::close(fd);
      continue;
    }
    // The strings, then the pointer arrays after them.
    char* cur = a->buf + sizeof(h);
    char* end = a->buf + n;
    auto next = [&]() -> char* {
      char* s = cur;
      while (cur < end && *cur)
        ++cur;
      if (cur >= end)
        return nullptr;
      ++cur;
      return s;
    };
    auto** ptrs = reinterpret_cast<char**>(
      a->buf + ((static_cast<size_t>(n) + 15) & ~size_t{15}));
    size_t room
      = (a->buf + a->buf_size - reinterpret_cast<char*>(ptrs)) / sizeof(char*);
    bool ok
      = static_cast<size_t>(h.argc) + static_cast<size_t>(h.envc) + 2 <= room;
    char* prog = ok ? next() : nullptr;
    char** argv = ptrs;
    char** envp = ptrs + h.argc + 1;
    for (int i = 0; ok && i < h.argc; ++i)
      ok = (argv[i] = next()) != nullptr;
    for (int i = 0; ok && i < h.envc; ++i)
      ok = (envp[i] = next()) != nullptr;
    char* cwd = ok && h.has_cwd ? next() : nullptr;
    if (!ok || !prog || (h.has_cwd && !cwd)) {
      for (int fd : got)
        if (fd >= 0)
          ::close(fd);
      reply r;
      r.not_started = 1;
      r.stage = 3;
      r.error = EINVAL;
      send_reply(r);
      continue;
    }
    argv[h.argc] = nullptr;
    envp[h.envc] = nullptr;
    child_args cmd;
    cmd.path = prog;
    cmd.argv = argv;
    cmd.envp = envp;
    cmd.cwd = cwd;
    cmd.in = -1;
    cmd.out = got[0];
    cmd.err = got[1] >= 0 ? got[1] : got[0];
    cmd.cgroup = h.has_cgroup ? got[2] : -1;
    cmd.cgroup_dir = h.has_cgroup && h.has_cgroup_dir ? got[3] : -1;
    if (h.has_cgroup && got[2] < 0) {
      for (int fd : got)
        if (fd >= 0)
          ::close(fd);
      reply r;
      r.not_started = 1;
      r.stage = 4;
      r.error = EBADF;
      send_reply(r);
      continue;
    }
    cmd.new_group = true;
    cmd.die_with_parent = true;
    cmd.close_others = true;
    cmd.parent = self;
    auto pid = start_child(&cmd, a->stack_top, child_stack_size, nullptr);
    for (int fd : got)
      if (fd >= 0)
        ::close(fd);
    if (pid < 0 || cmd.stage != 0) {
      if (pid > 0)
        ::waitpid(pid, nullptr, 0);
      reply r;
      r.not_started = 1;
      r.stage = pid < 0 ? 3 : cmd.stage;
      r.error = pid < 0 ? errno : cmd.error;
      send_reply(r);
      continue;
    }
    leader = pid;
  }
}

std::string start_error(const spawn_options& opts, int stage, int err) {
  switch (stage) {
    case 1:
      return opts.argv[0] + ": " + std::strerror(err);
    case 2:
      return opts.cwd + ": " + std::strerror(err);
    case 4:
      return std::string{"cannot join its cgroup: "} + std::strerror(err);
    default:
      return std::string{"cannot set up the process: "} + std::strerror(err);
  }
}

} // namespace

process process::spawn_contained(const spawn_options& opts, const void* args,
                                 char* stack, size_t stack_size,
                                 std::string& error) {
  process p;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    error = std::string{"cannot start a process: "} + std::strerror(errno);
    return p;
  }
  supervisor_args sa;
  sa.child = *static_cast<const child_args*>(args);
  sa.report = fds[1];
  sa.stack_top = stack + stack_size;
  // The copy must not run our handlers before it resets them.
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  int pidfd = -1;
  auto pid = ::clone(supervisor_main, stack + 2 * stack_size,
                     CLONE_PIDFD | SIGCHLD, &sa, &pidfd);
  auto clone_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ::close(fds[1]);
  if (pid < 0) {
    ::close(fds[0]);
    error
      = std::string{"cannot start a process: "} + std::strerror(clone_errno);
    return p;
  }
  p.pid_ = pid;
  p.pidfd_ = pidfd;
  p.contained_ = true;
  // End-of-file: the command runs; a record: it did not start.
  start_failure fail;
  ssize_t n;
  while ((n = ::read(fds[0], &fail, sizeof(fail))) < 0 && errno == EINTR) {
    // retry
  }
  ::close(fds[0]);
  if (n == static_cast<ssize_t>(sizeof(fail))) {
    p.wait();
    error = start_error(opts, fail.stage, fail.error);
    p.reset();
    return process{};
  }
  return p;
}

bool born_in_cgroup() {
#ifdef ALB_HAVE_CLONE3_RUN
  return clone_into_cgroup.load(std::memory_order_relaxed);
#else
  return false;
#endif
}

void set_born_in_cgroup(bool on) {
  clone_into_cgroup.store(on, std::memory_order_relaxed);
}

std::map<std::string, std::string> current_environment() {
  std::map<std::string, std::string> out;
  for (char** e = environ; e && *e; ++e) {
    std::string kv{*e};
    auto eq = kv.find('=');
    if (eq != std::string::npos)
      out[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return out;
}

std::vector<std::string>
environment_strings(const std::map<std::string, std::string>& env) {
  std::vector<std::string> out;
  out.reserve(env.size());
  for (auto& [k, v] : env)
    out.push_back(k + "=" + v);
  return out;
}

process process::spawn(const spawn_options& opts, std::string& error) {
  process p;
  if (opts.argv.empty()) {
    error = "empty command";
    return p;
  }
  auto path = resolve(opts.argv[0], opts.env);
  if (path.empty()) {
    error = opts.argv[0] + ": command not found";
    return p;
  }
  std::vector<char*> argv;
  argv.reserve(opts.argv.size() + 1);
  for (auto& a : opts.argv)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  char* const* env = environ;
  if (!opts.env.empty()) {
    envp.reserve(opts.env.size() + 1);
    for (auto& kv : opts.env)
      envp.push_back(const_cast<char*>(kv.c_str()));
    envp.push_back(nullptr);
    env = envp.data();
  }
  child_args a;
  a.path = path.c_str();
  a.argv = argv.data();
  a.envp = env;
  a.cwd = opts.cwd.empty() ? nullptr : opts.cwd.c_str();
  a.in = opts.stdin_fd;
  a.out = opts.stdout_fd;
  a.err = opts.stderr_fd;
  a.new_group = opts.new_group;
  a.die_with_parent = opts.die_with_parent;
  a.close_others = opts.close_others;
  a.cgroup = opts.cgroup_procs_fd;
  a.cgroup_dir = opts.cgroup_procs_fd >= 0 ? opts.cgroup_dir_fd : -1;
  a.parent = ::getpid();
  // The child runs on this stack until it execs (CLONE_VFORK suspends this
  // thread meanwhile), so a per-thread buffer serves every spawn; a
  // supervisor's copy uses the upper half for its own, the lower half for
  // the command's start.
  constexpr size_t stack_size = child_stack_size;
  thread_local std::unique_ptr<char[]> stack{new char[2 * stack_size]};
  if (opts.contain)
    return spawn_contained(opts, &a, stack.get(), stack_size, error);
  // No signal handler may run in the child while it shares our memory.
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  int pidfd = -1;
  auto pid = start_child(&a, stack.get() + stack_size, stack_size, &pidfd);
  auto clone_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) {
    error
      = std::string{"cannot start a process: "} + std::strerror(clone_errno);
    return p;
  }
  p.pid_ = pid;
  p.pidfd_ = pidfd;
  p.group_ = opts.new_group;
  if (a.stage != 0) {
    // It never ran the command: reap it here.
    p.wait();
    error = start_error(opts, a.stage, a.error);
    p.reset();
    return process{};
  }
  return p;
}

process::process(process&& other) noexcept
  : pid_(other.pid_), pidfd_(other.pidfd_), group_(other.group_),
    contained_(other.contained_), status_(other.status_) {
  other.pid_ = -1;
  other.pidfd_ = -1;
  other.status_.reset();
}

process& process::operator=(process&& other) noexcept {
  if (this != &other) {
    reset();
    pid_ = other.pid_;
    pidfd_ = other.pidfd_;
    group_ = other.group_;
    contained_ = other.contained_;
    status_ = other.status_;
    other.pid_ = -1;
    other.pidfd_ = -1;
    other.status_.reset();
  }
  return *this;
}

process::~process() {
  reset();
}

void process::reset() noexcept {
  if (running()) {
    stop();
    if (!try_wait()) {
      // Not gone yet: the reaper collects it when it is, without blocking
      // this thread.
      child_reaper::instance().adopt(pid_, pidfd_);
      pidfd_ = -1;
    }
  }
  if (pidfd_ >= 0)
    ::close(pidfd_);
  pid_ = -1;
  pidfd_ = -1;
  group_ = false;
  contained_ = false;
  status_.reset();
}

void process::stop() const {
  kill_group(SIGKILL);
}

void process::kill_group(int sig) const {
  if (!running())
    return;
  if (contained_) {
    // The supervisor stops the tree on SIGTERM; SIGKILL of the supervisor
    // itself would leave the tree behind.
    ::syscall(SYS_pidfd_send_signal, pidfd_, sig == SIGKILL ? SIGTERM : sig,
              nullptr, 0);
    return;
  }
  // Only while the leader is unreaped: its pid (the group's id) cannot be
  // reused before that, so the signal cannot reach strangers.
  if (group_)
    ::kill(-pid_, sig);
  else
    ::syscall(SYS_pidfd_send_signal, pidfd_, sig, nullptr, 0);
}

std::optional<int> process::try_wait() {
  if (status_ || pid_ <= 0)
    return status_;
  siginfo_t info;
  std::memset(&info, 0, sizeof(info));
  // Look first, reap after: grandchildren left in its group are killed
  // while the leader still holds the group id.
  if (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_), &info,
               WEXITED | WNOHANG | WNOWAIT)
        != 0
      || info.si_pid == 0)
    return std::nullopt;
  if (group_)
    ::kill(-pid_, SIGKILL);
  std::memset(&info, 0, sizeof(info));
  while (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_),
                  &info, WEXITED)
           != 0
         && errno == EINTR) {
    // retry
  }
  status_ = status_of(info);
  return status_;
}

int process::wait() {
  if (status_ || pid_ <= 0)
    return status_.value_or(0);
  siginfo_t info;
  std::memset(&info, 0, sizeof(info));
  while (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_),
                  &info, WEXITED | WNOWAIT)
           != 0
         && errno == EINTR) {
    // retry
  }
  return try_wait().value_or(0);
}

// -- supervisor (the owner's side)
// ---------------------------------------------

std::unique_ptr<supervisor> supervisor::start(std::string& error) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    error = std::string{"cannot start a supervisor: "} + std::strerror(errno);
    return nullptr;
  }
  constexpr size_t stack_size = child_stack_size;
  // Freed here once the copy is made: the supervisor has its own.
  std::unique_ptr<char[]> mem{new char[2 * stack_size + 2 * max_request]};
  pool_args a;
  a.sock = sv[1];
  a.parent = ::getpid();
  a.stack_top = mem.get() + stack_size;
  a.buf = mem.get() + 2 * stack_size;
  a.buf_size = 2 * max_request;
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  int pidfd = -1;
  auto pid = ::clone(pool_main, mem.get() + 2 * stack_size,
                     CLONE_PIDFD | SIGCHLD, &a, &pidfd);
  auto clone_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ::close(sv[1]);
  if (pid < 0) {
    ::close(sv[0]);
    error
      = std::string{"cannot start a supervisor: "} + std::strerror(clone_errno);
    return nullptr;
  }
  std::unique_ptr<supervisor> s{new supervisor};
  s->pid_ = pid;
  s->pidfd_ = pidfd;
  s->sock_ = sv[0];
  s->alive_ = true;
  return s;
}

supervisor::~supervisor() {
  // Shutting the socket down ends it (it kills what runs first), even
  // while the reaper still watches a duplicate; the reaper collects it.
  if (sock_ >= 0) {
    ::shutdown(sock_, SHUT_RDWR);
    ::close(sock_);
  }
  if (pid_ > 0)
    child_reaper::instance().adopt(pid_, pidfd_);
}

bool supervisor::run(const spawn_options& opts, std::string& error) {
  if (!alive_) {
    error = "supervisor gone";
    return false;
  }
  if (opts.argv.empty()) {
    error = "empty command";
    return false;
  }
  auto path = resolve(opts.argv[0], opts.env);
  if (path.empty()) {
    error = opts.argv[0] + ": command not found";
    return false;
  }
  std::string buf;
  request_header h;
  h.type = request_run;
  h.argc = static_cast<int32_t>(opts.argv.size());
  h.has_cwd = opts.cwd.empty() ? 0 : 1;
  h.has_cgroup = opts.cgroup_procs_fd >= 0 ? 1 : 0;
  h.has_cgroup_dir = h.has_cgroup && opts.cgroup_dir_fd >= 0 ? 1 : 0;
  buf.resize(sizeof(h));
  auto add = [&](const char* s) {
    buf.append(s);
    buf.push_back('\0');
  };
  add(path.c_str());
  for (auto& x : opts.argv)
    add(x.c_str());
  int32_t envc = 0;
  if (opts.env.empty()) {
    for (char** e = environ; e && *e; ++e, ++envc)
      add(*e);
  } else {
    for (auto& kv : opts.env) {
      add(kv.c_str());
      ++envc;
    }
  }
  h.envc = envc;
  if (h.has_cwd)
    add(opts.cwd.c_str());
  if (buf.size() > max_request) {
    error = "command and environment too large for a supervisor";
    return false;
  }
  std::memcpy(buf.data(), &h, sizeof(h));
  int out = opts.stdout_fd >= 0 ? opts.stdout_fd : 1;
  int err = opts.stderr_fd >= 0 ? opts.stderr_fd : 2;
  int fds[4] = {out, err, opts.cgroup_procs_fd, opts.cgroup_dir_fd};
  size_t nfds = h.has_cgroup_dir ? 4 : h.has_cgroup ? 3 : 2;
  alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(fds))];
  std::memset(ctl, 0, sizeof(ctl));
  iovec iov{buf.data(), buf.size()};
  msghdr msg;
  std::memset(&msg, 0, sizeof(msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl;
  msg.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
  auto* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
  std::memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
  ssize_t n;
  while ((n = ::sendmsg(sock_, &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
    // retry
  }
  if (n != static_cast<ssize_t>(buf.size())) {
    error = std::string{"cannot reach the supervisor: "} + std::strerror(errno);
    alive_ = false;
    return false;
  }
  return true;
}

void supervisor::stop() {
  if (!alive_)
    return;
  request_header h;
  h.type = request_stop;
  if (::send(sock_, &h, sizeof(h), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
    alive_ = false;
}

std::optional<supervisor::outcome> supervisor::take() {
  reply r;
  ssize_t n;
  while ((n = ::recv(sock_, &r, sizeof(r), MSG_DONTWAIT)) < 0
         && errno == EINTR) {
    // retry
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    return std::nullopt;
  if (n != static_cast<ssize_t>(sizeof(r))) {
    alive_ = false;
    return outcome{"the supervisor died", 0};
  }
  if (r.not_started) {
    outcome o;
    o.error
      = r.stage == 1 ? std::string{"cannot execute: "} + std::strerror(r.error)
        : r.stage == 2
          ? std::string{"cannot change directory: "} + std::strerror(r.error)
        : r.stage == 4
          ? std::string{"cannot join its cgroup: "} + std::strerror(r.error)
          : std::string{"cannot set up the process: "} + std::strerror(r.error);
    return o;
  }
  return outcome{"", r.status};
}

// -- reaper -------------------------------------------------------------------

struct child_reaper::impl {
  struct entry {
    /// Called when the child ended (watch), or empty (adopted: reap it).
    std::function<void()> on_exit;
    pid_t pid = -1;
  };
  int ep = -1;
  std::mutex mtx;
  std::unordered_map<int, entry> entries;
  std::thread thread;

  void add(int fd, entry e) {
    {
      std::lock_guard<std::mutex> guard{mtx};
      entries[fd] = std::move(e);
    }
    epoll_event ev;
    std::memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN | EPOLLONESHOT;
    ev.data.fd = fd;
    if (::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
      // Should not happen; fire at once rather than never.
      fire(fd);
    }
  }

  void fire(int fd) {
    entry e;
    {
      std::lock_guard<std::mutex> guard{mtx};
      auto i = entries.find(fd);
      if (i == entries.end())
        return;
      e = std::move(i->second);
      entries.erase(i);
    }
    ::epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
    if (e.on_exit) {
      e.on_exit();
    } else {
      siginfo_t info;
      ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(fd), &info,
               WEXITED | WNOHANG);
    }
    ::close(fd);
  }

  void run() {
    epoll_event evs[64];
    for (;;) {
      auto n = ::epoll_wait(ep, evs, 64, -1);
      for (int i = 0; i < n; ++i)
        fire(evs[i].data.fd);
    }
  }
};

child_reaper::child_reaper() : impl_(new impl) {
  impl_->ep = ::epoll_create1(EPOLL_CLOEXEC);
  // Never joined: the reaper lives as long as the process.
  impl_->thread = std::thread{[this] { impl_->run(); }};
  impl_->thread.detach();
}

child_reaper::~child_reaper() {
  // nop: never destroyed (see instance())
}

child_reaper& child_reaper::instance() {
  // Leaked on purpose: its thread may still run while statics go away.
  static auto* r = new child_reaper;
  return *r;
}

void child_reaper::watch(const process& p, std::function<void()> on_exit) {
  if (p.pidfd() < 0)
    return;
  int fd = ::fcntl(p.pidfd(), F_DUPFD_CLOEXEC, 3);
  if (fd < 0)
    return;
  impl_->add(fd, impl::entry{std::move(on_exit), p.pid()});
}

void child_reaper::watch_fd(int fd, std::function<void()> on_ready) {
  int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (dup < 0)
    return;
  impl_->add(dup, impl::entry{std::move(on_ready), -1});
}

void child_reaper::adopt(pid_t pid, int pidfd) {
  impl_->add(pidfd, impl::entry{{}, pid});
}

} // namespace alb
