#include "runtime/cgroup.hpp"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/process.hpp"

namespace alb {

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in{path};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Undoes mountinfo's octal escapes (a space is \040).
std::string unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3'
        && s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0'
        && s[i + 3] <= '7') {
      out.push_back(static_cast<char>(
        (s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> out;
  size_t b = 0;
  while (b < line.size()) {
    while (b < line.size() && line[b] == ' ')
      ++b;
    auto e = line.find(' ', b);
    if (e == std::string_view::npos)
      e = line.size();
    if (e > b)
      out.push_back(line.substr(b, e - b));
    b = e;
  }
  return out;
}

bool write_text(const std::string& path, const char* text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  auto n = ::write(fd, text, std::strlen(text));
  ::close(fd);
  return n == static_cast<ssize_t>(std::strlen(text));
}

std::vector<pid_t> pids_in(const std::string& dir) {
  std::vector<pid_t> out;
  std::istringstream in{read_file(dir + "/cgroup.procs")};
  long pid;
  while (in >> pid)
    out.push_back(static_cast<pid_t>(pid));
  return out;
}

std::vector<std::string> subdirs(const std::string& dir) {
  std::vector<std::string> out;
  auto* d = ::opendir(dir.c_str());
  if (!d)
    return out;
  while (auto* e = ::readdir(d)) {
    if (e->d_type != DT_DIR || std::strcmp(e->d_name, ".") == 0
        || std::strcmp(e->d_name, "..") == 0)
      continue;
    out.push_back(e->d_name);
  }
  ::closedir(d);
  return out;
}

// Whether a process is in the cgroup whose cgroup.events is open as `fd`
// (one that cannot be read counts as populated).
bool populated_fd(int fd) {
  char buf[256];
  auto n = ::pread(fd, buf, sizeof(buf) - 1, 0);
  if (n <= 0)
    return true;
  buf[n] = '\0';
  return std::strstr(buf, "populated 0") == nullptr;
}

void close_fd(int& fd) {
  if (fd >= 0)
    ::close(fd);
  fd = -1;
}

// Whether no process is left in `dir` or below ("populated 0" in
// cgroup.events), waiting up to `wait_ms` for it (the kernel notifies a
// change of that file through poll).
bool wait_unpopulated(const std::string& dir, int wait_ms) {
  int fd = ::open((dir + "/cgroup.events").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return true; // gone already
  using clock = std::chrono::steady_clock;
  auto until = clock::now() + std::chrono::milliseconds(wait_ms);
  bool empty = false;
  for (;;) {
    char buf[256];
    auto n = ::pread(fd, buf, sizeof(buf) - 1, 0);
    if (n < 0)
      break;
    buf[n] = '\0';
    if (std::strstr(buf, "populated 0")) {
      empty = true;
      break;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  until - clock::now())
                  .count();
    if (left <= 0)
      break;
    pollfd p{fd, POLLPRI, 0};
    // Woken by the change; at most 50 ms, in case a change slips between
    // the read and the poll.
    ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 50)));
  }
  ::close(fd);
  return empty;
}

// Kills everything in `dir` and below, waits for it to go and removes the
// cgroups, deepest first; returns how many processes were in them, or -1
// when `dir` stays.
long kill_and_remove(const std::string& dir, int wait_ms) {
  long killed = 0;
  for (auto& sub : subdirs(dir)) {
    auto n = kill_and_remove(dir + "/" + sub, wait_ms);
    if (n > 0)
      killed += n;
  }
  killed += static_cast<long>(pids_in(dir).size());
  write_text(dir + "/cgroup.kill", "1");
  wait_unpopulated(dir, wait_ms);
  if (::rmdir(dir.c_str()) != 0 && errno != ENOENT)
    return -1;
  return killed;
}

} // namespace

std::optional<cgroup2_mount> find_cgroup2_mount(std::string_view mountinfo) {
  size_t b = 0;
  while (b < mountinfo.size()) {
    auto e = mountinfo.find('\n', b);
    if (e == std::string_view::npos)
      e = mountinfo.size();
    auto w = words(mountinfo.substr(b, e - b));
    b = e + 1;
    // ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - TYPE ...
    size_t dash = 6;
    while (dash < w.size() && w[dash] != "-")
      ++dash;
    if (w.size() < 5 || dash + 1 >= w.size() || w[dash + 1] != "cgroup2")
      continue;
    return cgroup2_mount{unescape(w[3]), unescape(w[4])};
  }
  return std::nullopt;
}

std::optional<std::string> own_cgroup2_path(std::string_view proc_cgroup) {
  size_t b = 0;
  while (b < proc_cgroup.size()) {
    auto e = proc_cgroup.find('\n', b);
    if (e == std::string_view::npos)
      e = proc_cgroup.size();
    auto line = proc_cgroup.substr(b, e - b);
    b = e + 1;
    if (line.rfind("0::", 0) == 0 && line.size() > 3)
      return std::string{line.substr(3)};
  }
  return std::nullopt;
}

std::string cgroup2_directory(const cgroup2_mount& m, const std::string& path) {
  if (path.empty() || path.front() != '/')
    return {};
  // A path outside the mount's root (another cgroup namespace, a
  // bind-mounted subtree) is not reachable through it.
  std::string rel;
  if (m.root == "/")
    rel = path;
  else if (path == m.root)
    rel = "/";
  else if (path.rfind(m.root + "/", 0) == 0)
    rel = path.substr(m.root.size());
  else
    return {};
  if (rel.find("/../") != std::string::npos
      || (rel.size() >= 3 && rel.compare(rel.size() - 3, 3, "/..") == 0))
    return {};
  auto dir = m.mount_point;
  if (rel != "/")
    dir += rel;
  return dir;
}

std::string node_cgroup_name(pid_t pid, unsigned long long start) {
  return "alb-node-" + std::to_string(pid) + "-" + std::to_string(start);
}

bool parse_node_cgroup_name(std::string_view name, pid_t& pid,
                            unsigned long long& start) {
  constexpr std::string_view prefix = "alb-node-";
  if (name.substr(0, prefix.size()) != prefix)
    return false;
  name.remove_prefix(prefix.size());
  auto dash = name.find('-');
  if (dash == 0 || dash == std::string_view::npos || dash + 1 == name.size())
    return false;
  auto digits = [](std::string_view s) {
    return !s.empty() && s.size() <= 19
           && s.find_first_not_of("0123456789") == std::string_view::npos;
  };
  auto p = name.substr(0, dash), s = name.substr(dash + 1);
  if (!digits(p) || !digits(s) || p.size() > 9)
    return false;
  pid = static_cast<pid_t>(std::stol(std::string{p}));
  start = std::stoull(std::string{s});
  return pid > 0;
}

std::optional<unsigned long long> process_start_time(pid_t pid) {
  auto stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  // The command name may hold spaces and parentheses: fields count from
  // the last ')'.
  auto close = stat.rfind(')');
  if (close == std::string::npos)
    return std::nullopt;
  std::istringstream in{stat.substr(close + 2)};
  std::string field;
  // Field 3 (state) is the first after ')'; the start time is field 22.
  for (int i = 3; i < 22 && in >> field; ++i) {
    // skip
  }
  unsigned long long start = 0;
  if (!(in >> start))
    return std::nullopt;
  return start;
}

// -- test_cgroup -------------------------------------------------------------

test_cgroup::~test_cgroup() {
  // Empty unless something escaped its supervisor: an empty one that was
  // never killed serves the next test (with its descriptors; nothing to
  // kill, so no cgroup.kill either); a killed one goes, and one still
  // emptying goes once its processes have.
  bool empty = !killed_ && events_ >= 0 && !populated_fd(events_);
  if (empty && owner_
      && owner_->recycle(cgroup_set::idle_cgroup{path_, procs_, dir_, events_}))
    return;
  close_fd(procs_);
  close_fd(dir_);
  close_fd(events_);
  if (!empty)
    kill();
  if (::rmdir(path_.c_str()) != 0 && errno == EBUSY && owner_)
    owner_->removed_later(path_);
}

void test_cgroup::kill() const {
  killed_ = true;
  write_text(path_ + "/cgroup.kill", "1");
}

std::vector<pid_t> test_cgroup::pids() const {
  return pids_in(path_);
}

// -- cgroup_set --------------------------------------------------------------

long cgroup_set::remove_tree(const std::string& dir, int wait_ms) {
  return kill_and_remove(dir, wait_ms);
}

std::shared_ptr<cgroup_set> cgroup_set::open(opening& o) {
  auto mount = find_cgroup2_mount(read_file("/proc/self/mountinfo"));
  if (!mount) {
    o.why_not = "no cgroup2 file system is mounted";
    return nullptr;
  }
  auto own = own_cgroup2_path(read_file("/proc/self/cgroup"));
  if (!own) {
    o.why_not = "this process is in no cgroup v2 (no 0:: line in "
                "/proc/self/cgroup)";
    return nullptr;
  }
  auto parent = cgroup2_directory(*mount, *own);
  if (parent.empty()) {
    o.why_not
      = "its cgroup " + *own + " is not visible under " + mount->mount_point;
    return nullptr;
  }
  auto start = process_start_time(::getpid());
  if (!start) {
    o.why_not = "cannot read /proc/self/stat";
    return nullptr;
  }
  // Nodes SIGKILLed with their supervisors left these: whatever still runs
  // in them belongs to no live node.
  for (auto& name : subdirs(parent)) {
    pid_t pid;
    unsigned long long at;
    if (!parse_node_cgroup_name(name, pid, at))
      continue;
    if (pid == ::getpid() && at == *start)
      continue;
    auto alive_since = process_start_time(pid);
    if (alive_since && *alive_since == at)
      continue; // a running node's
    auto killed = kill_and_remove(parent + "/" + name, 2000);
    o.removed.push_back(
      name
      + (killed < 0 ? std::string{" (could not remove it)"}
                    : " (" + std::to_string(killed) + " processes killed)"));
  }
  std::shared_ptr<cgroup_set> s{new cgroup_set};
  s->path_ = parent + "/" + node_cgroup_name(::getpid(), *start);
  if (::mkdir(s->path_.c_str(), 0755) != 0 && errno != EEXIST) {
    o.why_not = "cannot create " + s->path_ + ": " + std::strerror(errno);
    return nullptr;
  }
  if (::access((s->path_ + "/cgroup.kill").c_str(), W_OK) != 0) {
    o.why_not = s->path_
                + " has no writable cgroup.kill (Linux 5.14 or "
                  "newer is needed)";
    ::rmdir(s->path_.c_str());
    return nullptr;
  }
  // A child must be able to join (write access to the common ancestor's
  // cgroup.procs too, and no controllers keeping processes out of inner
  // cgroups): try it once with `true`.
  std::string error;
  auto probe = s->create(error);
  if (!probe) {
    o.why_not = error;
    ::rmdir(s->path_.c_str());
    return nullptr;
  }
  spawn_options po;
  po.argv = {"true"};
  po.cgroup_procs_fd = probe->procs_fd();
  po.cgroup_dir_fd = probe->dir_fd();
  auto p = process::spawn(po, error);
  int status = p.running() ? p.wait() : -1;
  if (!error.empty() || status != 0) {
    o.why_not
      = error.empty() ? "a child could not join " + probe->path() : error;
    probe.reset();
    ::rmdir(s->path_.c_str());
    return nullptr;
  }
  return s;
}

cgroup_set::~cgroup_set() {
  for (auto& c : idle_) {
    close_fd(c.procs);
    close_fd(c.dir);
    close_fd(c.events);
  }
  kill_and_remove(path_, 2000);
}

std::unique_ptr<test_cgroup> cgroup_set::create(std::string& error) {
  retry_pending();
  std::unique_ptr<test_cgroup> t{new test_cgroup};
  uint64_t n = 0;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    while (!idle_.empty() && t->path_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      // Only a cgroup nothing has entered since its test ended is reused.
      if (!populated_fd(c.events)) {
        t->path_ = std::move(c.path);
        t->procs_ = c.procs;
        t->dir_ = c.dir;
        t->events_ = c.events;
      } else {
        close_fd(c.procs);
        close_fd(c.dir);
        close_fd(c.events);
        write_text(c.path + "/cgroup.kill", "1");
        pending_.push_back(std::move(c.path));
      }
    }
    if (t->path_.empty())
      n = ++made_;
  }
  if (n == 0) {
    t->owner_ = shared_from_this();
    return t;
  }
  t->path_ = path_ + "/test-" + std::to_string(n);
  if (::mkdir(t->path_.c_str(), 0755) != 0) {
    if (errno != EEXIST) {
      error = "cannot create " + t->path_ + ": " + std::strerror(errno);
      return nullptr;
    }
    // Left by an earlier run of the same number whose processes were
    // still dying: clear it.
    if (kill_and_remove(t->path_, 2000) < 0
        || ::mkdir(t->path_.c_str(), 0755) != 0) {
      error = "cannot create " + t->path_ + ": " + std::strerror(errno);
      return nullptr;
    }
  }
  auto fail = [&](const std::string& what) {
    error = "cannot open " + what + ": " + std::strerror(errno);
    close_fd(t->procs_);
    close_fd(t->dir_);
    close_fd(t->events_);
    ::rmdir(t->path_.c_str());
    return nullptr;
  };
  t->procs_
    = ::open((t->path_ + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
  if (t->procs_ < 0)
    return fail(t->path_ + "/cgroup.procs");
  t->dir_ = ::open(t->path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (t->dir_ < 0)
    return fail(t->path_);
  t->events_
    = ::open((t->path_ + "/cgroup.events").c_str(), O_RDONLY | O_CLOEXEC);
  if (t->events_ < 0)
    return fail(t->path_ + "/cgroup.events");
  t->owner_ = shared_from_this();
  return t;
}

bool cgroup_set::recycle(const idle_cgroup& c) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (idle_.size() >= max_idle)
    return false;
  idle_.push_back(c);
  return true;
}

void cgroup_set::removed_later(std::string dir) {
  std::lock_guard<std::mutex> guard{mtx_};
  pending_.push_back(std::move(dir));
}

void cgroup_set::retry_pending() {
  std::lock_guard<std::mutex> guard{mtx_};
  std::vector<std::string> left;
  for (auto& dir : pending_)
    if (::rmdir(dir.c_str()) != 0 && errno == EBUSY)
      left.push_back(dir);
  pending_ = std::move(left);
}

} // namespace alb
