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
#include "runtime/cgroup.hpp"
#include "runtime/devices.hpp"
#include "runtime/output_capture.hpp"
#include "runtime/process.hpp"

namespace alb {

namespace {

/// Runs placements as child processes (command-less ones as timers).
class process_executor final : public executor {
public:
  process_executor(size_t tail_bytes, std::shared_ptr<test_log_store> logs,
                   uint64_t max_output, const device_map& devices,
                   std::shared_ptr<cgroup_set> cgroups)
    : tail_bytes_(tail_bytes), logs_(std::move(logs)), max_output_(max_output),
      base_env_(current_environment()), devices_(devices),
      cgroups_(std::move(cgroups)) {
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
      runs_.emplace(seq, run{{}, {}, {}, host.now()});
      host.timer(item.expected_duration, seq);
      return true;
    }
    std::string error;
    int files[2];
    if (!logs_->create(item.test_id, files, error)) {
      fail(done, "cannot create the log: " + error);
      return false;
    }
    auto cap = item.max_output != 0 ? item.max_output : max_output_;
    // Past the cap the capture calls the exit notifier: on_exit then sees
    // `exceeded()` and kills the test.
    auto out = output_capture::start(files[0], files[1], cap,
                                     host.exit_notifier(seq), error);
    if (!out) {
      logs_->closed(item.test_id, 0);
      fail(done, error);
      return false;
    }
    // Specific devices for this run (held until it ends), and only those
    // visible to it; a test needing none sees none of the node's GPUs.
    auto held = devices_.acquire(seq, item.accelerators);
    if (!held) {
      out->close_writers();
      out->finish();
      logs_->closed(item.test_id, 0);
      fail(done, "no free accelerator devices for it on this node");
      return false;
    }
    auto pin = visible_devices_env(*held, devices_.devices());
    spawn_options o;
    o.argv = item.command;
    if (!item.env.empty() || !pin.empty()) {
      auto env = base_env_;
      for (auto& [k, v] : item.env)
        env[k] = v;
      // The pinning wins over the test's own setting: two tests must never
      // see the same device.
      for (auto& [k, v] : pin)
        env[k] = v;
      o.env = environment_strings(env);
    }
    o.cwd = item.cwd;
    o.stdout_fd = out->stdout_writer();
    o.stderr_fd = out->stderr_writer();
    // Nothing the test starts may outlive it (timeout, cancel, a node
    // that dies, setsid grandchildren): a supervisor always, and a cgroup
    // of its own where the node can make one (a test whose cgroup cannot
    // be made runs under its supervisor alone).
    o.contain = true;
    std::unique_ptr<test_cgroup> cg;
    if (cgroups_) {
      std::string why;
      cg = cgroups_->create(why);
      if (cg) {
        o.cgroup_procs_fd = cg->procs_fd();
        o.cgroup_dir_fd = cg->dir_fd();
      }
    }
    auto started = host.now();
    // A long-lived supervisor runs it when one can (no copy of this
    // process per test); else a supervisor of its own.
    if (auto sup = idle_supervisor(); sup && sup->run(o, error)) {
      child_reaper::instance().watch_fd(sup->fd(), host.exit_notifier(seq));
      out->close_writers();
      auto& r
        = runs_.emplace(seq, run{{}, std::move(sup), std::move(out), started})
            .first->second;
      r.test_id = item.test_id;
      r.cgroup = std::move(cg);
    } else {
      error.clear();
      auto p = process::spawn(o, error);
      // Only the child's tree may hold the write ends: end-of-file comes
      // when it is gone.
      out->close_writers();
      if (!p.running()) {
        devices_.release(seq);
        out->finish();
        logs_->closed(item.test_id, 0);
        fail(done, error);
        done.stderr_tail = "alb: " + error + "\n";
        return false;
      }
      child_reaper::instance().watch(p, host.exit_notifier(seq));
      auto& r
        = runs_.emplace(seq, run{std::move(p), {}, std::move(out), started})
            .first->second;
      r.test_id = item.test_id;
      r.cgroup = std::move(cg);
    }
    if (item.timeout > 0)
      host.deadline(item.timeout, seq);
    return true;
  }

  bool on_timer(executor_host& host, uint64_t seq, const work_item&,
                work_report& done) override {
    auto i = runs_.find(seq);
    if (i == runs_.end() || i->second.out)
      return false;
    done.success = true;
    done.exec_seconds = host.now() - i->second.started;
    runs_.erase(i);
    return true;
  }

  bool on_deadline(executor_host&, uint64_t seq, const work_item&,
                   work_report&) override {
    auto i = runs_.find(seq);
    if (i == runs_.end() || (!i->second.proc.running() && !i->second.sup)
        || i->second.over_limit)
      return false;
    // Stopped here (its whole tree); its end arrives through the reaper
    // like any other.
    i->second.timed_out = true;
    kill(i->second);
    return false;
  }

  bool on_exit(executor_host& host, uint64_t seq, const work_item& item,
               work_report& r) override {
    auto i = runs_.find(seq);
    if (i == runs_.end())
      return false;
    auto& t = i->second;
    if (t.out && !t.over_limit && !t.timed_out && t.out->exceeded()) {
      // Past the cap (the capture stopped reading): kill the tree; its
      // end follows like any other.
      t.over_limit = true;
      kill(t);
    }
    std::optional<int> status;
    if (t.sup) {
      auto oc = t.sup->take();
      if (!oc)
        return false;
      if (!oc->error.empty()) {
        fail(r, oc->error);
        end_logs(item, t, r);
        r.stderr_tail += "alb: " + oc->error + "\n";
        release(std::move(t.sup));
        devices_.release(seq);
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
    end_logs(item, t, r);
    if (t.out_exceeded) {
      // Killed by the node (or it ended by itself just past the cap).
      r.success = false;
      if (WIFSIGNALED(*status)) {
        r.signal = WTERMSIG(*status);
        r.exit_code = 128 + r.signal;
      } else {
        r.exit_code = WEXITSTATUS(*status);
      }
      r.error = "output limit exceeded (more than " + format_bytes(t.cap)
                + " of stdout and stderr)";
    } else if (t.timed_out) {
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
    devices_.release(seq);
    runs_.erase(i);
    return true;
  }

  void stop(uint64_t seq) override {
    // The process (or the supervisor, which is not reused) kills the
    // command's tree as it goes and is reaped without blocking; its exit
    // notice then finds nothing. Its devices are free again at once: the
    // group is already being killed.
    devices_.release(seq);
    auto i = runs_.find(seq);
    if (i == runs_.end())
      return;
    if (i->second.out) {
      kill(i->second);
      i->second.out->finish();
      logs_->closed(i->second.test_id, i->second.out->stdout_bytes()
                                         + i->second.out->stderr_bytes());
    }
    runs_.erase(i);
  }

  void fill_load(executor_host&, worker_load&) override {
    // nop: the worker's counts are all a real worker knows
  }

private:
  struct run {
    run(process p, std::unique_ptr<supervisor> s,
        std::shared_ptr<output_capture> o, double t)
      : proc(std::move(p)), sup(std::move(s)), out(std::move(o)), started(t) {
      // nop
    }
    process proc;
    /// The long-lived supervisor running it (else `proc` is its own).
    std::unique_ptr<supervisor> sup;
    /// Its stdout and stderr (null: a simulated run).
    std::shared_ptr<output_capture> out;
    double started = 0;
    bool timed_out = false;
    /// Killed for writing past the cap.
    bool over_limit = false;
    /// Set when it ended: it wrote more than the cap (`cap`).
    bool out_exceeded = false;
    uint64_t cap = 0;
    std::string test_id;
    /// Its cgroup (null: none, the supervisor alone contains it); killed
    /// and removed when the run goes.
    std::unique_ptr<test_cgroup> cgroup;
  };

  // Stops the run's whole tree: its cgroup at once (what left the
  // supervisor's tree too), and the supervisor, which reports the end.
  static void kill(run& t) {
    if (t.cgroup)
      t.cgroup->kill();
    if (t.sup)
      t.sup->stop();
    else
      t.proc.stop();
  }

  // The tree is gone: takes the rest of its output, the tails, and hands
  // the logs to the store (which may prune older ones now).
  void end_logs(const work_item& item, run& t, work_report& r) {
    if (!t.out)
      return;
    t.out->finish();
    t.out_exceeded = t.out->exceeded();
    t.cap = t.out->cap();
    r.output_tail = t.out->tail(output_capture::out, tail_bytes_);
    r.stderr_tail = t.out->tail(output_capture::err, tail_bytes_);
    logs_->closed(item.test_id, t.out->stdout_bytes() + t.out->stderr_bytes());
  }

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
  std::shared_ptr<test_log_store> logs_;
  uint64_t max_output_;
  std::map<std::string, std::string> base_env_;
  device_allocator devices_;
  /// The node's cgroups (null: none here, or turned off).
  std::shared_ptr<cgroup_set> cgroups_;
  std::unordered_map<uint64_t, run> runs_;
  std::vector<std::unique_ptr<supervisor>> idle_;
};

} // namespace

device_map worker_devices(const worker_capabilities& caps) {
  device_map out;
  for (auto& [type, count] : caps.available_accelerators) {
    if (count <= 0)
      continue;
    auto i = caps.accelerator_devices.find(type);
    if (i != caps.accelerator_devices.end()) {
      out[type] = i->second;
      continue;
    }
    auto& xs = out[type];
    for (int k = 0; k < count; ++k)
      xs.push_back(k);
  }
  return out;
}

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
  if (!opts.logs) {
    std::string error;
    opts.logs = test_log_store::open(test_log_options{}, error);
    if (!opts.logs)
      throw std::runtime_error{error};
  }
  auto devices = worker_devices(o.caps);
  return spawn_worker_with(
    sys, std::move(scheduler), std::move(o),
    observe_runs(std::make_unique<process_executor>(
                   opts.tail_bytes, std::move(opts.logs), opts.max_output,
                   devices, std::move(opts.cgroups)),
                 std::move(opts.observer)));
}

} // namespace alb
