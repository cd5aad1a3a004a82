#pragma once

// Per-test cgroups (cgroup v2), where the node can create them: the node
// makes `<its own cgroup>/alb-node-<pid>-<start time>` and, in it, one
// `test-<n>` per running test; the test's command is born in its cgroup
// (clone3 with CLONE_INTO_CGROUP) or, where the kernel refuses that,
// joins it before it execs (it writes to the cgroup's `cgroup.procs`, see
// `spawn_options::cgroup_procs_fd`), so everything it starts is in there,
// whatever session, process group or parent it moves to. At timeout,
// cancel and end the node writes `cgroup.kill` (the kernel kills every
// process in it at once) and removes the cgroup. A node SIGKILLed
// together with its supervisors leaves its cgroups behind: the next node
// started in the same cgroup finds them (the pid in the name is gone or
// started at another time), kills what is in them and removes them.
//
// Found from /proc/self/mountinfo (the cgroup2 mount, e.g.
// /sys/fs/cgroup/unified on a hybrid host) and /proc/self/cgroup (the
// "0::PATH" line). Linux 5.14 or newer (cgroup.kill). No CAF.

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

namespace alb {

/// A cgroup v2 mount.
struct cgroup2_mount {
  /// The cgroup it shows at its mount point ("/" unless namespaced).
  std::string root;
  /// Where it is mounted, e.g. "/sys/fs/cgroup/unified".
  std::string mount_point;
};

/// The first cgroup2 mount in `mountinfo` (the text of
/// /proc/self/mountinfo), or nothing.
std::optional<cgroup2_mount> find_cgroup2_mount(std::string_view mountinfo);

/// The cgroup v2 path in `proc_cgroup` (the text of /proc/self/cgroup:
/// its "0::PATH" line), or nothing.
std::optional<std::string> own_cgroup2_path(std::string_view proc_cgroup);

/// The directory of cgroup `path` through mount `m` ("" when that mount
/// does not show it).
std::string cgroup2_directory(const cgroup2_mount& m, const std::string& path);

/// The name of a node's cgroup: "alb-node-<pid>-<start>", `start` being
/// the process's start time (field 22 of /proc/PID/stat), so a reused pid
/// does not make a stale cgroup look alive.
std::string node_cgroup_name(pid_t pid, unsigned long long start);

/// Parses a `node_cgroup_name`; false when `name` is not one.
bool parse_node_cgroup_name(std::string_view name, pid_t& pid,
                            unsigned long long& start);

/// Start time of process `pid` (field 22 of /proc/PID/stat), or nothing
/// when there is no such process.
std::optional<unsigned long long> process_start_time(pid_t pid);

class cgroup_set;

/// One test's cgroup. Destroying it keeps it for the next test when it is
/// empty and was never killed; else it kills what is left in it and
/// removes it (when its processes are not gone yet, its set removes it
/// later).
class test_cgroup {
public:
  ~test_cgroup();
  test_cgroup(const test_cgroup&) = delete;
  test_cgroup& operator=(const test_cgroup&) = delete;

  /// Its directory.
  const std::string& path() const { return path_; }
  /// Descriptor of its `cgroup.procs` (close-on-exec): a child writes "0"
  /// to it to join.
  int procs_fd() const { return procs_; }
  /// Descriptor of its directory (close-on-exec): a child is born in it
  /// with clone3 and CLONE_INTO_CGROUP (`spawn_options::cgroup_dir_fd`).
  int dir_fd() const { return dir_; }
  /// Kills every process in it (cgroup.kill); they die asynchronously.
  /// A killed cgroup is not used again: Linux (6.18 at least) kills a
  /// child born in a cgroup with clone3 when that cgroup was killed more
  /// often than its parent's cgroup (it compares the two `kill_seq`s).
  void kill() const;
  /// The processes in it now.
  std::vector<pid_t> pids() const;

private:
  friend class cgroup_set;
  test_cgroup() = default;
  std::string path_;
  int procs_ = -1;
  int dir_ = -1;
  // Its cgroup.events, read to learn whether a process is in it.
  int events_ = -1;
  mutable bool killed_ = false;
  std::shared_ptr<cgroup_set> owner_;
};

/// The node's cgroup and its tests' cgroups.
class cgroup_set : public std::enable_shared_from_this<cgroup_set> {
public:
  /// What `open` found and did.
  struct opening {
    /// Why cgroups cannot be used here ("" = they can).
    std::string why_not;
    /// Stale node cgroups removed, e.g. "alb-node-12-345 (2 processes
    /// killed)".
    std::vector<std::string> removed;
  };

  /// Creates this node's cgroup under its own, after removing (killing
  /// what is in them) the stale node cgroups beside it, and checks that a
  /// child can join a cgroup in it. Null (with `o.why_not`) when cgroups
  /// cannot be used: no cgroup2 mount, no permission to create or join,
  /// no cgroup.kill.
  static std::shared_ptr<cgroup_set> open(opening& o);

  /// Kills everything in the node's cgroup and removes it (waiting up to
  /// two seconds for killed processes to go).
  ~cgroup_set();
  cgroup_set(const cgroup_set&) = delete;
  cgroup_set& operator=(const cgroup_set&) = delete;

  /// The node's cgroup directory.
  const std::string& path() const { return path_; }
  /// An empty cgroup for one test: one a finished test left empty (kept
  /// for reuse, at most `max_idle`), else a new `test-<n>` (n counts from 1
  /// in each node); null (with `error`) when it cannot be made.
  std::unique_ptr<test_cgroup> create(std::string& error);

  /// Kills everything in the cgroups under `dir` (one node's), waits up to
  /// `wait_ms` for it to go and removes them and `dir`; returns how many
  /// processes were killed, or -1 when `dir` could not be removed.
  static long remove_tree(const std::string& dir, int wait_ms);

private:
  friend class test_cgroup;
  cgroup_set() = default;
  // Removes the cgroups whose processes were still dying when their
  // test ended.
  void retry_pending();
  void removed_later(std::string dir);
  // An empty test cgroup kept for the next test, with its descriptors.
  struct idle_cgroup {
    std::string path;
    int procs = -1;
    int dir = -1;
    int events = -1;
  };
  // Keeps an empty cgroup for the next test (false: enough are kept).
  bool recycle(const idle_cgroup& c);
  std::string path_;
  std::mutex mtx_;
  uint64_t made_ = 0;
  std::vector<std::string> pending_;
  // Empty test cgroups to reuse: making and removing a cgroup costs the
  // kernel far more than a short test's fork and exec.
  std::vector<idle_cgroup> idle_;

public:
  /// How many empty test cgroups are kept for reuse at most.
  static constexpr size_t max_idle = 64;
};

} // namespace alb
