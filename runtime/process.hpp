#pragma once

// Child processes, one way for all of them: `process` owns one child (its
// pid and a pidfd), starts it in its own process group with a parent-death
// signal, and kills the whole group when it is destroyed unreaped. The
// `child_reaper` is one thread per process that learns of exits as they
// happen (epoll on pidfds) and calls back, so nobody polls.
//
// Linux only (clone with CLONE_PIDFD, waitid P_PIDFD: kernel 5.4 or newer;
// clone3 with CLONE_INTO_CGROUP where there is one, see
// `spawn_options::cgroup_dir_fd`).
// No CAF.

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace alb {

/// How to start a child.
struct spawn_options {
  /// Program and arguments; argv[0] is searched on PATH unless it has a
  /// slash.
  std::vector<std::string> argv;
  /// Full environment as KEY=VALUE strings (empty = this process's).
  std::vector<std::string> env;
  /// Working directory ("" = this process's).
  std::string cwd;
  /// Descriptor for the child's stdin (-1 = /dev/null).
  int stdin_fd = -1;
  /// Descriptor for the child's stdout (-1 = inherit).
  int stdout_fd = -1;
  /// Descriptor for the child's stderr (-1 = inherit).
  int stderr_fd = -1;
  /// Start it as the leader of a new process group (killed as a group).
  bool new_group = true;
  /// Kill it (SIGKILL) when its parent dies (PR_SET_PDEATHSIG: strictly,
  /// when the thread that started it ends; CAF's scheduler threads live as
  /// long as the actor system).
  bool die_with_parent = true;
  /// Close every descriptor above 2 in the child.
  bool close_others = true;
  /// Run it under a supervisor of its own, so nothing it starts outlives
  /// it: the supervisor (a small copy of this process, never exec'd) is a
  /// child subreaper with a parent-death signal; when the command ends,
  /// is stopped, or this process dies (even SIGKILL), it kills the
  /// command's process group and then every descendant left (orphans,
  /// `setsid` ones included, are reparented to it), and exits as the
  /// command did (same exit status or signal).
  bool contain = false;
  /// Descriptor of a cgroup's `cgroup.procs` (runtime/cgroup.hpp): the
  /// command joins that cgroup before it execs, so all it starts is in
  /// there (-1 = it stays in this process's cgroup). A contained
  /// command's supervisor stays outside.
  int cgroup_procs_fd = -1;
  /// Descriptor of that cgroup's directory (with `cgroup_procs_fd` only):
  /// the command is born in the cgroup (clone3 with CLONE_INTO_CGROUP,
  /// Linux 5.7, x86-64), which costs the kernel far less than moving it
  /// there; where the kernel refuses that, it joins through
  /// `cgroup_procs_fd` (-1 = it joins).
  int cgroup_dir_fd = -1;
};

/// Whether children given a cgroup directory are born in it (clone3 with
/// CLONE_INTO_CGROUP); false on other architectures, and once the kernel
/// refused clone3 or that flag (ENOSYS, EINVAL, E2BIG: older kernels,
/// seccomp filters), after which they join through cgroup.procs.
bool born_in_cgroup();

/// Turns being born in the cgroup off (or on again, where the kernel
/// allows it): copies of this process made afterwards (supervisors) keep
/// the setting. For tests of the joining path.
void set_born_in_cgroup(bool on);

/// Environment of this process as a map (to add a child's settings to).
std::map<std::string, std::string> current_environment();

/// KEY=VALUE strings of `env`, as `spawn_options::env` wants them.
std::vector<std::string>
environment_strings(const std::map<std::string, std::string>& env);

/// One child process. Movable, not copyable; destroying a running child
/// kills its process group (SIGKILL) and reaps it without blocking.
class process {
public:
  /// No child.
  process() = default;
  /// Starts a child; on failure returns an empty process and sets `error`
  /// (a missing program or directory is reported the same way: exec
  /// errors of the child are passed back before this returns).
  static process spawn(const spawn_options& opts, std::string& error);

  process(process&& other) noexcept;
  process& operator=(process&& other) noexcept;
  process(const process&) = delete;
  process& operator=(const process&) = delete;
  ~process();

  /// Whether this holds a child that was not reaped yet.
  bool running() const { return pid_ > 0 && !status_; }
  /// The child's pid (-1 = none).
  pid_t pid() const { return pid_; }
  /// The pidfd (readable once the child ended; -1 = none).
  int pidfd() const { return pidfd_; }
  /// Sends `sig` to the child's process group (or the child alone when it
  /// has none; to a contained child's supervisor, which passes SIGKILL and
  /// SIGTERM on as "stop everything").
  void kill_group(int sig) const;
  /// Stops it and everything it started (SIGKILL to its group; for a
  /// contained child, the supervisor kills the whole tree).
  void stop() const;
  /// The wait status if the child ended (it is reaped then), else nothing.
  std::optional<int> try_wait();
  /// Waits for the child and returns its wait status.
  int wait();

private:
  static process spawn_contained(const spawn_options& opts, const void* args,
                                 char* stack, size_t stack_size,
                                 std::string& error);
  void reset() noexcept;

  pid_t pid_ = -1;
  int pidfd_ = -1;
  bool group_ = false;
  bool contained_ = false;
  std::optional<int> status_;
};

/// How a command run to its end by `run_to_end` went.
struct run_result {
  /// Why it did not start ("" = it ran).
  std::string error;
  /// Its wait status (when it ran).
  int status = 0;
  /// It was stopped (its group killed) when its time was up.
  bool timed_out = false;
  /// Its stdout and stderr as written (the first `max_output` bytes).
  std::string output;
  /// Exit status, or 128 + the signal that killed it; -1 when it did not
  /// start.
  int exit_code() const;
};

/// Runs `opts.argv` to its end, its stdout captured through a pipe (the
/// `spawn_options` stdout descriptor is ignored) together with its stderr
/// unless `opts.stderr_fd` names where stderr goes (e.g. /dev/null),
/// keeping the first `max_output` bytes: the short helper commands alb
/// runs (gnuplot, nvidia-smi, python3 --version). With `timeout_seconds`
/// > 0 a command (or anything holding its output open) still running
/// then is stopped, its group killed, and `timed_out` is set: a hung
/// driver must not hang a node's start. Like every child, it is a
/// `process`: if this throws or the process dies, the child goes too.
/// Blocks until it ends.
run_result run_to_end(spawn_options opts, size_t max_output = 1 << 20,
                      double timeout_seconds = 0);

/// A long-lived supervisor that runs contained commands one at a time, so
/// a contained test costs no copy of this process: started once (a small
/// copy of this process that never execs, with the same guarantees as
/// `spawn_options::contain`), it starts each command with a vfork-like
/// clone and, when the command ends or is stopped, kills the command's
/// whole tree and reports how it ended. It exits, killing what runs, when
/// its owner destroys it or when this process dies.
class supervisor {
public:
  /// How a command ended.
  struct outcome {
    /// Why it did not start ("" = it ran).
    std::string error;
    /// Its wait status (when it ran).
    int status = 0;
  };

  /// Starts a supervisor; null (and `error` set) when it cannot.
  static std::unique_ptr<supervisor> start(std::string& error);
  ~supervisor();
  supervisor(const supervisor&) = delete;
  supervisor& operator=(const supervisor&) = delete;

  /// Hands it a command to run (only when idle). False (with `error`)
  /// when the command cannot be handed over (too large, supervisor gone):
  /// then use `process::spawn` with `contain` instead.
  bool run(const spawn_options& opts, std::string& error);
  /// Stops the running command and its tree; its outcome follows.
  void stop();
  /// Readable once the outcome of the current command is there.
  int fd() const { return sock_; }
  /// The outcome of the current command when it is there (a supervisor
  /// that died reports that as the error), else nothing.
  std::optional<outcome> take();
  /// Whether it still serves.
  bool alive() const { return alive_; }

private:
  supervisor() = default;
  pid_t pid_ = -1;
  int pidfd_ = -1;
  int sock_ = -1;
  bool alive_ = false;
};

/// Calls back when watched children end: one thread, epoll on pidfds.
class child_reaper {
public:
  /// The process-wide reaper (its thread starts on first use).
  static child_reaper& instance();

  /// Calls `on_exit()` from the reaper's thread once `p` has ended (it is
  /// not reaped: the owner calls `try_wait`). The callback must be cheap
  /// and thread-safe (e.g. send a message). Watches a duplicate of the
  /// pidfd, so `p` may go away first; the callback then still runs.
  void watch(const process& p, std::function<void()> on_exit);

  /// Calls `on_ready()` from the reaper's thread once `fd` is readable
  /// (watching a duplicate of it, once).
  void watch_fd(int fd, std::function<void()> on_ready);

  /// Takes over reaping `pid` (already signalled) through `pidfd`, which
  /// it closes when done.
  void adopt(pid_t pid, int pidfd);

  child_reaper(const child_reaper&) = delete;
  child_reaper& operator=(const child_reaper&) = delete;

private:
  child_reaper();
  ~child_reaper();
  struct impl;
  impl* impl_;
};

} // namespace alb
