#include "actors/real_worker.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <unordered_map>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "actors/executor.hpp"
#include "actors/observed_executor.hpp"
#include "runtime/process.hpp"

namespace alb {

namespace {

std::string read_tail(int fd, size_t n) {
  struct stat st;
  if (fd < 0 || ::fstat(fd, &st) != 0 || st.st_size <= 0)
    return {};
  auto size = static_cast<size_t>(st.st_size);
  auto len = std::min(size, n);
  std::string s(len, '\0');
  auto got = ::pread(fd, s.data(), len, static_cast<off_t>(size - len));
  s.resize(got > 0 ? static_cast<size_t>(got) : 0);
  return s;
}

/// An open descriptor, closed with its owner.
class unique_fd {
public:
  unique_fd() = default;
  explicit unique_fd(int fd) : fd_(fd) {
    // nop
  }
  unique_fd(unique_fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  unique_fd& operator=(unique_fd&& o) noexcept {
    if (this != &o) {
      close();
      fd_ = o.fd_;
      o.fd_ = -1;
    }
    return *this;
  }
  ~unique_fd() { close(); }
  int get() const { return fd_; }

private:
  void close() {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = -1;
  }
  int fd_ = -1;
};

/// Runs placements as child processes (command-less ones as timers).
class process_executor final : public executor {
public:
  explicit process_executor(size_t tail_bytes)
    : tail_bytes_(tail_bytes), base_env_(current_environment()) {
    // nop
  }

  bool start(executor_host& host, uint64_t seq, const work_item& item,
             work_report& done) override {
    if (item.command.empty()) {
      // Simulated: "runs" for its expected duration and passes.
      if (item.expected_duration <= 0) {
        done.success = true;
        return false;
      }
      runs_.emplace(seq, run{{}, {}, {}, host.now(), false});
      host.timer(item.expected_duration, seq);
      return true;
    }
    char tmpl[] = "/tmp/alb-out-XXXXXX";
    unique_fd out{::mkostemp(tmpl, O_CLOEXEC)};
    if (out.get() < 0) {
      fail(done,
           std::string{"cannot create output file: "} + std::strerror(errno));
      return false;
    }
    // Unlinked at once: the descriptor is all we need, and nothing is left
    // behind if this process dies.
    ::unlink(tmpl);
    spawn_options o;
    o.argv = item.command;
    if (!item.env.empty()) {
      auto env = base_env_;
      for (auto& [k, v] : item.env)
        env[k] = v;
      o.env = environment_strings(env);
    }
    o.cwd = item.cwd;
    o.stdout_fd = out.get();
    o.stderr_fd = out.get();
    // Nothing the test starts may outlive it (timeout, cancel, a node
    // that dies, setsid grandchildren).
    o.contain = true;
    auto started = host.now();
    std::string error;
    // A long-lived supervisor runs it when one can (no copy of this
    // process per test); else a supervisor of its own.
    if (auto sup = idle_supervisor(); sup && sup->run(o, error)) {
      child_reaper::instance().watch_fd(sup->fd(), host.exit_notifier(seq));
      runs_.emplace(seq,
                    run{{}, std::move(sup), std::move(out), started, false});
    } else {
      error.clear();
      auto p = process::spawn(o, error);
      if (!p.running()) {
        fail(done, error);
        done.output_tail = "alb: " + error + "\n";
        return false;
      }
      child_reaper::instance().watch(p, host.exit_notifier(seq));
      runs_.emplace(seq, run{std::move(p), {}, std::move(out), started, false});
    }
    if (item.timeout > 0)
      host.deadline(item.timeout, seq);
    return true;
  }

  bool on_timer(executor_host& host, uint64_t seq, const work_item&,
                work_report& done) override {
    auto i = runs_.find(seq);
    if (i == runs_.end())
      return false;
    done.success = true;
    done.exec_seconds = host.now() - i->second.started;
    runs_.erase(i);
    return true;
  }

  bool on_deadline(executor_host&, uint64_t seq, const work_item&,
                   work_report&) override {
    auto i = runs_.find(seq);
    if (i == runs_.end() || (!i->second.proc.running() && !i->second.sup))
      return false;
    // Stopped here (its whole tree); its end arrives through the reaper
    // like any other.
    i->second.timed_out = true;
    if (i->second.sup)
      i->second.sup->stop();
    else
      i->second.proc.stop();
    return false;
  }

  bool on_exit(executor_host& host, uint64_t seq, const work_item& item,
               work_report& r) override {
    auto i = runs_.find(seq);
    if (i == runs_.end())
      return false;
    auto& t = i->second;
    std::optional<int> status;
    if (t.sup) {
      auto oc = t.sup->take();
      if (!oc)
        return false;
      if (!oc->error.empty()) {
        fail(r, oc->error);
        r.output_tail = "alb: " + oc->error + "\n";
        release(std::move(t.sup));
        runs_.erase(i);
        return true;
      }
      status = oc->status;
      release(std::move(t.sup));
    } else {
      status = t.proc.try_wait();
      if (!status)
        return false;
    }
    r.exec_seconds = host.now() - t.started;
    r.output_tail = read_tail(t.out.get(), tail_bytes_);
    if (t.timed_out) {
      r.success = false;
      r.timed_out = true;
      r.exit_code = -1;
      char buf[64];
      std::snprintf(buf, sizeof(buf), "timed out after %g s", item.timeout);
      r.error = buf;
    } else if (WIFEXITED(*status)) {
      r.exit_code = WEXITSTATUS(*status);
      r.success = r.exit_code == 0;
      if (!r.success)
        r.error = "exit status " + std::to_string(r.exit_code);
    } else if (WIFSIGNALED(*status)) {
      r.exit_code = 128 + WTERMSIG(*status);
      r.signal = WTERMSIG(*status);
      r.success = false;
      r.error = "killed by signal " + std::to_string(WTERMSIG(*status));
    }
    runs_.erase(i);
    return true;
  }

  void stop(uint64_t seq) override {
    // The process (or the supervisor, which is not reused) kills the
    // command's tree as it goes and is reaped without blocking; its exit
    // notice then finds nothing.
    runs_.erase(seq);
  }

  void fill_load(executor_host&, worker_load&) override {
    // nop: the worker's counts are all a real worker knows
  }

private:
  struct run {
    process proc;
    /// The long-lived supervisor running it (else `proc` is its own).
    std::unique_ptr<supervisor> sup;
    unique_fd out;
    double started = 0;
    bool timed_out = false;
  };

  // An idle long-lived supervisor, started on demand (null when none can
  // be).
  std::unique_ptr<supervisor> idle_supervisor() {
    if (!idle_.empty()) {
      auto s = std::move(idle_.back());
      idle_.pop_back();
      return s;
    }
    std::string error;
    return supervisor::start(error);
  }

  // Back to the idle ones once its command ended (a dead one is dropped).
  void release(std::unique_ptr<supervisor> s) {
    if (s && s->alive())
      idle_.push_back(std::move(s));
  }

  static void fail(work_report& done, std::string error) {
    done.success = false;
    done.exit_code = 127;
    done.error = std::move(error);
  }

  size_t tail_bytes_;
  std::map<std::string, std::string> base_env_;
  std::unordered_map<uint64_t, run> runs_;
  std::vector<std::unique_ptr<supervisor>> idle_;
};

} // namespace

worker_actor spawn_real_worker(caf::actor_system& sys,
                               scheduler_actor scheduler,
                               real_worker_options opts) {
  worker_core_options o;
  o.caps = std::move(opts.caps);
  o.coordinator = std::move(opts.coordinator);
  o.token = std::move(opts.token);
  o.node = std::move(opts.node);
  o.uplink = std::move(opts.uplink);
  o.report_interval = opts.report_interval;
  o.on_joined = std::move(opts.on_joined);
  return spawn_worker_with(
    sys, std::move(scheduler), std::move(o),
    observe_runs(std::make_unique<process_executor>(opts.tail_bytes),
                 std::move(opts.observer)));
}

} // namespace alb
