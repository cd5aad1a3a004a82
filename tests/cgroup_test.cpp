#define BOOST_TEST_MODULE cgroup
#include <boost/test/unit_test.hpp>

// Per-test cgroups (runtime/cgroup.hpp): the parsing of mountinfo and
// /proc/self/cgroup anywhere; creating, joining, killing and removing
// cgroups, and the removal of a dead node's, where this process can (root
// with a cgroup2 mount and cgroup.kill; otherwise those cases say why
// they did not run and pass).

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <cstddef>
#include <cstring>
#include <functional>

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/cgroup.hpp"
#include "runtime/process.hpp"

using namespace alb;

namespace {

bool alive(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/stat"};
  std::string stat;
  std::getline(in, stat);
  auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size()
         && stat[close + 2] != 'Z';
}

bool wait_gone(pid_t pid) {
  for (int i = 0; i < 500; ++i) {
    if (!alive(pid))
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// Reads a pid the command wrote to `fd` (one line).
pid_t read_pid(int fd) {
  std::string s;
  char c;
  while (::read(fd, &c, 1) == 1 && c != '\n')
    s.push_back(c);
  return s.empty() ? -1 : static_cast<pid_t>(std::stol(s));
}

// This process's cgroups, or null (with the reason printed) when this
// machine or user cannot have them.
std::shared_ptr<cgroup_set> open_or_say_why() {
  cgroup_set::opening o;
  auto s = cgroup_set::open(o);
  if (!s)
    BOOST_TEST_MESSAGE("no cgroups here (" << o.why_not << "): skipped");
  return s;
}

} // namespace

BOOST_AUTO_TEST_CASE(finds_the_cgroup2_mount_in_mountinfo) {
  // A hybrid host: v1 controllers, the v2 hierarchy at .../unified.
  std::string hybrid
    = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
      "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup "
      "cgroup rw,memory\n"
      "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:15 - cgroup2 "
      "cgroup2 rw\n";
  auto m = find_cgroup2_mount(hybrid);
  BOOST_REQUIRE(m);
  BOOST_TEST(m->mount_point == "/sys/fs/cgroup/unified");
  BOOST_TEST(m->root == "/");
  // Octal escapes (a space) and a namespaced root.
  auto odd = find_cgroup2_mount(
    "29 1 0:26 /lab /mnt/cg\\040two rw - cgroup2 cgroup2 rw,nsdelegate\n");
  BOOST_REQUIRE(odd);
  BOOST_TEST(odd->mount_point == "/mnt/cg two");
  BOOST_TEST(odd->root == "/lab");
  BOOST_TEST(!find_cgroup2_mount("31 23 0:28 / /sys/fs/cgroup rw - tmpfs "
                                 "tmpfs rw\n"));
  BOOST_TEST(!find_cgroup2_mount(""));
}

BOOST_AUTO_TEST_CASE(reads_the_own_cgroup_and_maps_it_to_a_directory) {
  BOOST_TEST(*own_cgroup2_path("9:name=systemd:/\n4:memory:/x/y\n0::/\n")
             == "/");
  BOOST_TEST(*own_cgroup2_path("0::/user.slice/session-2.scope\n")
             == "/user.slice/session-2.scope");
  BOOST_TEST(!own_cgroup2_path("4:memory:/x\n"));
  cgroup2_mount m{"/", "/sys/fs/cgroup/unified"};
  BOOST_TEST(cgroup2_directory(m, "/") == "/sys/fs/cgroup/unified");
  BOOST_TEST(cgroup2_directory(m, "/a/b") == "/sys/fs/cgroup/unified/a/b");
  cgroup2_mount sub{"/lab", "/mnt/cg"};
  BOOST_TEST(cgroup2_directory(sub, "/lab/n1") == "/mnt/cg/n1");
  BOOST_TEST(cgroup2_directory(sub, "/lab") == "/mnt/cg");
  // Outside what that mount shows, or climbing out of it.
  BOOST_TEST(cgroup2_directory(sub, "/other").empty());
  BOOST_TEST(cgroup2_directory(sub, "/labx").empty());
  BOOST_TEST(cgroup2_directory(m, "/a/../..").empty());
  BOOST_TEST(cgroup2_directory(m, "relative").empty());
}

BOOST_AUTO_TEST_CASE(node_cgroup_names_carry_pid_and_start_time) {
  BOOST_TEST(node_cgroup_name(123, 4567) == "alb-node-123-4567");
  pid_t pid = 0;
  unsigned long long start = 0;
  BOOST_TEST(parse_node_cgroup_name("alb-node-123-4567", pid, start));
  BOOST_TEST(pid == 123);
  BOOST_TEST(start == 4567u);
  for (auto bad : {"alb-node-", "alb-node-12", "alb-node--5", "alb-node-1-",
                   "alb-node-x-1", "alb-node-1-2-3", "other-1-2",
                   "alb-node-0-1", "alb-node-99999999999-1"})
    BOOST_TEST(!parse_node_cgroup_name(bad, pid, start), bad);
  auto mine = process_start_time(::getpid());
  BOOST_REQUIRE(mine);
  BOOST_TEST(*mine > 0u);
  BOOST_TEST(!process_start_time(0x7ffffff0));
}

BOOST_AUTO_TEST_CASE(a_test_cgroup_holds_its_tree_and_cgroup_kill_ends_it) {
  auto set = open_or_say_why();
  if (!set)
    return;
  BOOST_TEST(set->path().find("/alb-node-" + std::to_string(::getpid()) + "-")
             != std::string::npos);
  std::string error;
  auto cg = set->create(error);
  BOOST_REQUIRE_MESSAGE(cg, error);
  auto dir = cg->path();
  // A supervised command whose grandchild leaves its session and process
  // group: it is still in the cgroup.
  int fds[2];
  BOOST_REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  spawn_options o;
  o.argv = {"sh", "-c", "setsid sleep 300 & echo $!; wait"};
  o.stdout_fd = fds[1];
  o.contain = true;
  o.cgroup_procs_fd = cg->procs_fd();
  o.cgroup_dir_fd = cg->dir_fd();
  auto p = process::spawn(o, error);
  ::close(fds[1]);
  BOOST_REQUIRE_MESSAGE(p.running(), error);
  auto grandchild = read_pid(fds[0]);
  ::close(fds[0]);
  BOOST_REQUIRE(grandchild > 0);
  auto in = cg->pids();
  BOOST_TEST(std::count(in.begin(), in.end(), grandchild) == 1);
  // The supervisor itself stays outside: the kill does not end it, it
  // reports the command's end.
  BOOST_TEST(std::count(in.begin(), in.end(), p.pid()) == 0);
  cg->kill();
  BOOST_TEST(wait_gone(grandchild));
  auto status = p.wait();
  BOOST_TEST(WIFSIGNALED(status));
  // Killed, it is not used again (a child born in it would be killed at
  // birth, see test_cgroup::kill): it goes, and the next test gets
  // another.
  cg.reset();
  BOOST_TEST(!exists(dir));
  auto next = set->create(error);
  BOOST_REQUIRE_MESSAGE(next, error);
  BOOST_TEST(next->path() != dir);
  BOOST_TEST(next->pids().empty());
  auto next_dir = next->path();
  next.reset();
  auto node_dir = set->path();
  set.reset();
  BOOST_TEST(!exists(next_dir));
  BOOST_TEST(!exists(node_dir));
}

namespace {

/// How a command run in a test cgroup went.
struct cgroup_run {
  /// Its wait status (-1: it did not start).
  int status = -1;
  /// Its cgroup (the "0::" line of /proc/self/cgroup, without "0::").
  std::string cgroup;
};

// Runs `sh` printing its cgroup in `cg`: started here, or through the
// long-lived supervisor `sup` when given.
cgroup_run run_in(test_cgroup& cg, supervisor* sup = nullptr) {
  cgroup_run r;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    return r;
  spawn_options o;
  o.argv = {"sh", "-c", "grep ^0:: /proc/self/cgroup"};
  o.stdout_fd = fds[1];
  o.cgroup_procs_fd = cg.procs_fd();
  o.cgroup_dir_fd = cg.dir_fd();
  std::string error;
  process p;
  if (sup) {
    if (!sup->run(o, error)) {
      ::close(fds[0]);
      ::close(fds[1]);
      BOOST_TEST_MESSAGE("cannot hand it over: " << error);
      return r;
    }
  } else {
    p = process::spawn(o, error);
  }
  ::close(fds[1]);
  std::string out;
  char buf[512];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof(buf))) > 0)
    out.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  if (sup) {
    pollfd pfd{sup->fd(), POLLIN, 0};
    if (::poll(&pfd, 1, 10000) != 1)
      return r;
    auto oc = sup->take();
    if (!oc || !oc->error.empty())
      return r;
    r.status = oc->status;
  } else {
    if (!p.running()) {
      BOOST_TEST_MESSAGE("cannot start it: " << error);
      return r;
    }
    r.status = p.wait();
  }
  if (out.rfind("0::", 0) == 0)
    r.cgroup = out.substr(3, out.find('\n') - 3);
  return r;
}

// The cgroup path of `cg` as /proc/PID/cgroup shows it (relative to the
// mount; this process's cgroup namespace is the mount's root).
std::string shown(const test_cgroup& cg) {
  std::ifstream in{"/proc/self/mountinfo"};
  std::stringstream text;
  text << in.rdbuf();
  auto m = find_cgroup2_mount(text.str());
  return m ? cg.path().substr(m->mount_point.size()) : cg.path();
}

} // namespace

// Children are born in their cgroup (clone3 with CLONE_INTO_CGROUP), here
// and through both kinds of supervisor, in new cgroups and in reused ones;
// a reused one was never killed, since Linux kills a child born in a
// cgroup killed more often than its parent's (the first version reused
// killed cgroups and every command in them died of SIGKILL at once).
BOOST_AUTO_TEST_CASE(children_are_born_in_new_and_reused_cgroups) {
  auto set = open_or_say_why();
  if (!set)
    return;
#if defined(__x86_64__)
  BOOST_TEST(born_in_cgroup());
#endif
  std::string error;
  auto sup = supervisor::start(error);
  BOOST_REQUIRE_MESSAGE(sup, error);
  std::string first;
  for (int round = 0; round < 3; ++round) {
    BOOST_TEST_CONTEXT("round " << round) {
      auto cg = set->create(error);
      BOOST_REQUIRE_MESSAGE(cg, error);
      if (round == 0)
        first = cg->path();
      else
        BOOST_TEST(cg->path() == first); // reused: it ended empty
      auto here = run_in(*cg);
      BOOST_TEST(here.status == 0);
      BOOST_TEST(here.cgroup == shown(*cg));
      auto pooled = run_in(*cg, sup.get());
      BOOST_TEST(pooled.status == 0);
      BOOST_TEST(pooled.cgroup == shown(*cg));
      spawn_options o;
      o.argv = {"true"};
      o.contain = true;
      o.cgroup_procs_fd = cg->procs_fd();
      o.cgroup_dir_fd = cg->dir_fd();
      auto p = process::spawn(o, error);
      BOOST_REQUIRE_MESSAGE(p.running(), error);
      BOOST_TEST(p.wait() == 0);
    }
  }
#if defined(__x86_64__)
  // Nothing fell back to joining on the way.
  BOOST_TEST(born_in_cgroup());
#endif
  // Killed (a timeout, a cancel), it is not reused, and the next one works.
  auto cg = set->create(error);
  BOOST_REQUIRE_MESSAGE(cg, error);
  cg->kill();
  auto killed = cg->path();
  cg.reset();
  cg = set->create(error);
  BOOST_REQUIRE_MESSAGE(cg, error);
  BOOST_TEST(cg->path() != killed);
  BOOST_TEST(run_in(*cg).status == 0);
  BOOST_TEST(run_in(*cg, sup.get()).status == 0);
}

namespace {

// Runs `body` in a child process and returns its exit status (or 128 +
// the signal that ended it): for changes that must not stay with the test
// process (a seccomp filter, another cgroup).
int in_child(const std::function<int()>& body) {
  auto pid = ::fork();
  if (pid == 0)
    ::_exit(body());
  int st = 0;
  if (pid < 0 || ::waitpid(pid, &st, 0) != pid)
    return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// Waits (up to 10 s) until no process is in cgroup `dir`: the kernel
// signals each change of its cgroup.events to poll.
bool wait_empty(const std::string& dir) {
  int fd = ::open((dir + "/cgroup.events").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  bool empty = false;
  for (int i = 0; i < 100 && !empty; ++i) {
    char buf[256];
    auto n = ::pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
      break;
    buf[n] = '\0';
    empty = std::strstr(buf, "populated 0") != nullptr;
    pollfd p{fd, POLLPRI, 0};
    if (!empty)
      ::poll(&p, 1, 100);
  }
  ::close(fd);
  return empty;
}

// Makes clone3 fail with `err` in this thread and what it starts, as the
// seccomp filters of some container runtimes do (ENOSYS).
bool refuse_clone3(int err) {
  struct sock_filter f[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 435 /* clone3 */, 0, 1),
    BPF_STMT(BPF_RET | BPF_K,
             SECCOMP_RET_ERRNO | (static_cast<unsigned>(err) & 0xffff)),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog;
  prog.len = sizeof(f) / sizeof(f[0]);
  prog.filter = f;
  return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
         && ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0;
}

// In a child: opens a set and runs commands in its cgroups in every way;
// 0 when each was in its cgroup and passed, else a code saying what
// failed (10 + the step).
int commands_land_in_their_cgroups(bool expect_born) {
  cgroup_set::opening op;
  auto set = cgroup_set::open(op);
  if (!set)
    return 10;
  std::string error;
  auto sup = supervisor::start(error);
  if (!sup)
    return 11;
  for (int round = 0; round < 2; ++round) {
    auto cg = set->create(error);
    if (!cg)
      return 12;
    auto here = run_in(*cg);
    if (here.status != 0 || here.cgroup != shown(*cg))
      return 13;
    auto pooled = run_in(*cg, sup.get());
    if (pooled.status != 0 || pooled.cgroup != shown(*cg))
      return 14;
  }
  if (born_in_cgroup() != expect_born)
    return 15;
  return 0;
}

} // namespace

// Where the kernel refuses clone3 (a seccomp filter answering ENOSYS, as
// container runtimes do, or EPERM), or being born in the cgroup is turned
// off, commands join their cgroup through cgroup.procs instead; ENOSYS
// turns clone3 off for good, EPERM only for that start.
BOOST_AUTO_TEST_CASE(commands_join_their_cgroup_where_clone3_is_refused) {
  if (!open_or_say_why())
    return;
  BOOST_TEST(in_child([] {
               return refuse_clone3(ENOSYS)
                        ? commands_land_in_their_cgroups(false)
                        : 9;
             })
             == 0);
  BOOST_TEST(in_child([] {
               return refuse_clone3(EPERM)
                        ? commands_land_in_their_cgroups(born_in_cgroup())
                        : 9;
             })
             == 0);
  BOOST_TEST(in_child([] {
               set_born_in_cgroup(false);
               return commands_land_in_their_cgroups(false);
             })
             == 0);
}

// Where this process's own cgroup was killed before (cgroup.kill while it
// was empty, e.g. by a service manager), Linux kills every child born in
// a fresh cgroup at birth; the first one that dies so turns being born in
// the cgroup off, and it and all later ones join theirs instead.
BOOST_AUTO_TEST_CASE(a_child_killed_at_birth_is_started_again_by_joining) {
  auto set = open_or_say_why();
  if (!set)
    return;
  auto parent = set->path().substr(0, set->path().rfind('/'));
  auto own = parent + "/alb-cgroup-test-" + std::to_string(::getpid());
  BOOST_REQUIRE(::mkdir(own.c_str(), 0755) == 0);
  auto code = in_child([&] {
    int kill = ::open((own + "/cgroup.kill").c_str(), O_WRONLY | O_CLOEXEC);
    int procs = ::open((own + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
    if (kill < 0 || procs < 0 || ::write(kill, "1", 1) != 1
        || ::write(procs, "0", 1) != 1)
      return 8;
    return commands_land_in_their_cgroups(false);
  });
  BOOST_TEST(code == 0);
  // The child's supervisors are still in there until their parent-death
  // signal has ended them.
  BOOST_TEST(wait_empty(own));
  BOOST_TEST(::rmdir(own.c_str()) == 0);
}

namespace {

// Starts `sh -c` with a grandchild that leaves the shell's session and
// process group and reports its pid itself, after `setsid`: a pid the
// shell printed (`setsid sleep & echo $!`) may belong to a child that has
// not left the group yet, and waiting for the shell kills its group (see
// process::try_wait), so that "orphan" died before the test looked at it.
// Returns the grandchild's pid once the shell ended (-1 on failure).
pid_t start_detached_orphan(int cgroup_procs_fd) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    return -1;
  spawn_options o;
  o.argv = {"sh", "-c", "setsid sh -c 'echo $$; exec sleep 300' &"};
  o.stdout_fd = fds[1];
  o.cgroup_procs_fd = cgroup_procs_fd;
  std::string error;
  auto p = process::spawn(o, error);
  ::close(fds[1]);
  if (!p.running()) {
    ::close(fds[0]);
    BOOST_TEST_MESSAGE("cannot start the shell: " << error);
    return -1;
  }
  auto orphan = read_pid(fds[0]);
  ::close(fds[0]);
  p.wait();
  return orphan;
}

// What a node SIGKILLed with its supervisors leaves: its cgroup beside
// ours (`set`), named after a pid that is not that process any more (ours,
// with another start time), with a process still running in a test
// cgroup. A new set (a node starting) kills it, says so with the count,
// and removes the cgroup; a live node's cgroup (ours) is left alone.
void check_the_sweep_of_a_dead_nodes_cgroup(const cgroup_set& set) {
  auto parent = set.path().substr(0, set.path().rfind('/'));
  auto stale = parent + "/" + node_cgroup_name(::getpid(), 1);
  BOOST_REQUIRE(::mkdir(stale.c_str(), 0755) == 0);
  BOOST_REQUIRE(::mkdir((stale + "/test-7").c_str(), 0755) == 0);
  int procs
    = ::open((stale + "/test-7/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
  BOOST_REQUIRE(procs >= 0);
  auto orphan = start_detached_orphan(procs);
  ::close(procs);
  BOOST_REQUIRE(orphan > 0);
  BOOST_TEST(alive(orphan));
  // Detached from us as a dead node's test is: its own session, its
  // parent gone.
  BOOST_TEST(::getsid(orphan) == orphan);
  {
    std::ifstream in{stale + "/test-7/cgroup.procs"};
    std::vector<pid_t> there;
    long x;
    while (in >> x)
      there.push_back(static_cast<pid_t>(x));
    BOOST_TEST(std::count(there.begin(), there.end(), orphan) == 1,
               "the orphan " << orphan << " is in test-7 (" << there.size()
                             << " there)");
  }
  cgroup_set::opening op;
  auto again = cgroup_set::open(op);
  BOOST_REQUIRE_MESSAGE(again, op.why_not);
  BOOST_TEST(wait_gone(orphan));
  BOOST_TEST(!exists(stale));
  BOOST_TEST(exists(set.path()));
  std::string removed;
  bool named = false;
  for (auto& r : op.removed) {
    named
      = named || r == node_cgroup_name(::getpid(), 1) + " (1 processes killed)";
    removed += (removed.empty() ? "" : ", ") + r;
  }
  BOOST_TEST(named, "removed: " << (removed.empty() ? "nothing" : removed));
  if (alive(orphan))
    ::kill(orphan, SIGKILL);
}

// Two commands through one long-lived supervisor, each in a cgroup of
// `set`: each sees its own cgroup in /proc/self/cgroup and passes.
void check_supervised_commands_in_cgroups(cgroup_set& set) {
  std::string error;
  auto sup = supervisor::start(error);
  BOOST_REQUIRE_MESSAGE(sup, error);
  for (int round = 0; round < 2; ++round) {
    auto cg = set.create(error);
    BOOST_REQUIRE_MESSAGE(cg, error);
    int fds[2];
    BOOST_REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    spawn_options o;
    o.argv = {"sh", "-c", "cat /proc/self/cgroup; echo $$"};
    o.stdout_fd = fds[1];
    o.cgroup_procs_fd = cg->procs_fd();
    BOOST_REQUIRE_MESSAGE(sup->run(o, error), error);
    ::close(fds[1]);
    std::string out;
    char buf[512];
    ssize_t n;
    while ((n = ::read(fds[0], buf, sizeof(buf))) > 0)
      out.append(buf, static_cast<size_t>(n));
    ::close(fds[0]);
    // The path of the test's cgroup, relative to the mount.
    auto rel = cg->path().substr(cg->path().find("/alb-node-"));
    BOOST_TEST(out.find(rel + "\n") != std::string::npos, out);
    pollfd pfd{sup->fd(), POLLIN, 0};
    BOOST_REQUIRE(::poll(&pfd, 1, 10000) == 1);
    auto oc = sup->take();
    BOOST_REQUIRE(oc);
    BOOST_TEST(oc->error.empty());
    BOOST_TEST(oc->status == 0);
  }
}

} // namespace

BOOST_AUTO_TEST_CASE(the_long_lived_supervisor_puts_commands_in_cgroups) {
  auto set = open_or_say_why();
  if (!set)
    return;
  check_supervised_commands_in_cgroups(*set);
}

BOOST_AUTO_TEST_CASE(a_dead_nodes_cgroups_are_killed_and_removed_at_start) {
  auto set = open_or_say_why();
  if (!set)
    return;
  check_the_sweep_of_a_dead_nodes_cgroup(*set);
}

// The order that read "0 processes killed" in about one run of four (and
// in a third of the rounds here): the supervisor case, then the sweep. The
// orphan was the shell's `$!`, a child that had not always called setsid
// when the shell ended, so waiting for the shell killed it with the
// shell's group before the sweep came; the count was right.
BOOST_AUTO_TEST_CASE(the_sweep_after_supervised_commands_counts_every_time) {
  for (int round = 0; round < 8; ++round) {
    BOOST_TEST_CONTEXT("round " << round) {
      // A set per round, as each case has its own (the sweep's set has the
      // same name and removes the node's cgroup as it goes).
      auto set = open_or_say_why();
      if (!set)
        return;
      check_supervised_commands_in_cgroups(*set);
      check_the_sweep_of_a_dead_nodes_cgroup(*set);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_cgroup_still_dying_at_its_end_is_removed_later) {
  auto set = open_or_say_why();
  if (!set)
    return;
  std::string error;
  auto cg = set->create(error);
  BOOST_REQUIRE_MESSAGE(cg, error);
  auto orphan = start_detached_orphan(cg->procs_fd());
  BOOST_REQUIRE(orphan > 0);
  // Still there when its test ends (out of its shell's group and session).
  BOOST_TEST(alive(orphan));
  auto dir = set->path();
  // The test's cgroup is killed as it goes (its process may still be
  // dying, so it cannot be removed yet: the set removes it later), then
  // the set goes, with everything in it.
  cg.reset();
  set.reset();
  BOOST_TEST(wait_gone(orphan));
  BOOST_TEST(!exists(dir));
}
