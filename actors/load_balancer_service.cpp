#include "actors/load_balancer_service.hpp"

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <stdexcept>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/scheduler.hpp"
#include "actors/system.hpp"

namespace alb {

namespace {

struct placement {
  uint32_t slot = 0;
  uint32_t ref = 0;
  uint32_t gen = 0;
};

// State shared by the caller's threads and the actors, behind one mutex.
struct shared_state {
  mutable std::mutex mtx;
  mutable std::condition_variable idle;
  std::map<std::string, assignment> known;
  std::map<std::string, placement> placed;
  std::map<std::string, uint32_t> slots;
  size_t open = 0;
  std::chrono::steady_clock::time_point start
    = std::chrono::steady_clock::now();

  double now() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now()
                                         - start)
      .count();
  }
};

struct proxy_state {
  static inline const char* name = "alb.external_worker";
  std::shared_ptr<shared_state> shared;
  std::string worker_id;
};

using proxy_impl = worker_actor::stateful_pointer<proxy_state>;

// Stands in for a worker the caller runs: records what the scheduler placed
// on it so get_assignments() can hand it out.
worker_actor::behavior_type proxy_behavior(proxy_impl self,
                                           std::shared_ptr<shared_state> sh,
                                           std::string worker_id) {
  self->state.shared = std::move(sh);
  self->state.worker_id = std::move(worker_id);
  return {
    [self](work_batch& b) {
      auto& st = self->state;
      std::lock_guard<std::mutex> guard{st.shared->mtx};
      auto it = st.shared->slots.find(st.worker_id);
      if (it == st.shared->slots.end())
        return;
      for (auto& item : b.items) {
        st.shared->placed[item.test_id]
          = placement{it->second, item.ref, item.gen};
        auto& a = st.shared->known[item.test_id];
        a.test_id = item.test_id;
        a.worker_id = st.worker_id;
        a.status = test_status::assigned;
        a.assigned_at = st.shared->now();
        ++a.attempts;
      }
    },
    [self](cancel_atom, uint32_t ref, uint32_t gen) {
      auto& st = self->state;
      std::lock_guard<std::mutex> guard{st.shared->mtx};
      for (auto i = st.shared->placed.begin(); i != st.shared->placed.end();
           ++i) {
        if (i->second.ref == ref && i->second.gen == gen) {
          st.shared->placed.erase(i);
          return;
        }
      }
    },
    [](finish_atom, uint64_t) {
      // nop: the caller runs the tests
    },
    [](tick_atom) {
      // nop: the caller reports load
    },
    [self](status_atom) {
      auto& st = self->state;
      std::lock_guard<std::mutex> guard{st.shared->mtx};
      auto it = st.shared->slots.find(st.worker_id);
      uint32_t n = 0;
      if (it != st.shared->slots.end())
        for (auto& [id, p] : st.shared->placed)
          n += p.slot == it->second ? 1 : 0;
      return n;
    },
    [self](leave_atom) { self->quit(); },
  };
}

} // namespace

struct load_balancer_service::impl {
  scheduler_config cfg;
  completion_callback callback;
  std::shared_ptr<shared_state> shared = std::make_shared<shared_state>();
  std::unique_ptr<caf::actor_system_config> sys_cfg;
  std::unique_ptr<caf::actor_system> sys;
  scheduler_actor scheduler;
  std::map<std::string, worker_actor> proxies;

  void require_running() const {
    if (!sys)
      throw std::logic_error("load_balancer_service is not started");
  }
};

load_balancer_service::load_balancer_service(scheduler_config cfg)
  : impl_(std::make_unique<impl>()) {
  if (auto err = cfg.validate(); !err.empty())
    throw std::invalid_argument(err);
  impl_->cfg = std::move(cfg);
}

load_balancer_service::~load_balancer_service() {
  stop();
}

void load_balancer_service::start() {
  if (impl_->sys)
    return;
  impl_->sys_cfg = std::make_unique<caf::actor_system_config>();
  configure_system(*impl_->sys_cfg, 2, false);
  impl_->sys = std::make_unique<caf::actor_system>(*impl_->sys_cfg);
  scheduler_options so;
  so.config = impl_->cfg;
  so.finish_when_done = false;
  auto sh = impl_->shared;
  auto cb = impl_->callback;
  so.on_end = [sh, cb](const assignment& a, const attempt_outcome* o) {
    test_result r;
    r.test_id = a.test_id;
    r.success = a.success;
    r.execution_time = a.execution_time;
    r.error = a.error;
    if (o) {
      r.exit_code = o->exit_code;
      r.output_tail = o->output_tail;
    }
    assignment final_view = a;
    {
      std::lock_guard<std::mutex> guard{sh->mtx};
      auto& k = sh->known[a.test_id];
      final_view.attempts = std::max(k.attempts, a.attempts);
      if (final_view.worker_id.empty())
        final_view.worker_id = k.worker_id;
      r.worker_id = final_view.worker_id;
    }
    // The callback runs before the test counts as ended, so wait_idle()
    // returning means every callback has run.
    if (cb)
      cb(final_view, r);
    {
      std::lock_guard<std::mutex> guard{sh->mtx};
      sh->known[a.test_id] = final_view;
      sh->placed.erase(a.test_id);
      if (sh->open > 0)
        --sh->open;
    }
    sh->idle.notify_all();
  };
  impl_->scheduler = spawn_scheduler(*impl_->sys, std::move(so));
}

void load_balancer_service::stop() {
  if (!impl_->sys)
    return;
  caf::anon_send_exit(impl_->scheduler, caf::exit_reason::user_shutdown);
  impl_->scheduler = nullptr;
  impl_->proxies.clear();
  impl_->sys.reset();
  impl_->sys_cfg.reset();
}

bool load_balancer_service::running() const {
  return impl_->sys != nullptr;
}

void load_balancer_service::register_worker(const std::string& worker_id,
                                            worker_capabilities caps) {
  impl_->require_running();
  if (impl_->proxies.count(worker_id) > 0)
    throw std::invalid_argument("worker '" + worker_id
                                + "' is already registered");
  caps.worker_id = worker_id;
  auto proxy = impl_->sys->spawn(proxy_behavior, impl_->shared, worker_id);
  caf::scoped_actor self{*impl_->sys};
  std::string failure;
  // Registration is rare: a blocking round trip is fine here.
  self
    ->request(impl_->scheduler, std::chrono::seconds(10), join_atom::value,
              caps, proxy)
    .receive(
      [&](uint32_t slot) {
        std::lock_guard<std::mutex> guard{impl_->shared->mtx};
        impl_->shared->slots[worker_id] = slot;
      },
      [&](caf::error& err) { failure = impl_->sys->render(err); });
  if (!failure.empty()) {
    caf::anon_send_exit(proxy, caf::exit_reason::user_shutdown);
    throw std::invalid_argument("worker '" + worker_id
                                + "' was not accepted: " + failure);
  }
  impl_->proxies.emplace(worker_id, proxy);
}

void load_balancer_service::unregister_worker(const std::string& worker_id) {
  impl_->require_running();
  auto it = impl_->proxies.find(worker_id);
  if (it == impl_->proxies.end())
    return;
  uint32_t slot;
  {
    std::lock_guard<std::mutex> guard{impl_->shared->mtx};
    slot = impl_->shared->slots[worker_id];
    impl_->shared->slots.erase(worker_id);
  }
  caf::anon_send(impl_->scheduler, leave_atom::value, slot);
  caf::anon_send_exit(it->second, caf::exit_reason::user_shutdown);
  impl_->proxies.erase(it);
}

void load_balancer_service::update_worker_load(const std::string& worker_id,
                                               worker_load load) {
  impl_->require_running();
  uint32_t slot;
  {
    std::lock_guard<std::mutex> guard{impl_->shared->mtx};
    auto it = impl_->shared->slots.find(worker_id);
    if (it == impl_->shared->slots.end())
      throw std::invalid_argument("unknown worker '" + worker_id + "'");
    slot = it->second;
  }
  load.worker_id = worker_id;
  caf::anon_send(impl_->scheduler, load_report{slot, std::move(load)});
}

void load_balancer_service::submit_test(test_requirements req) {
  impl_->require_running();
  if (auto err = validate_requirements(req); !err.empty())
    throw std::invalid_argument("test '" + req.test_id + "': " + err);
  {
    std::lock_guard<std::mutex> guard{impl_->shared->mtx};
    auto& sh = *impl_->shared;
    auto it = sh.known.find(req.test_id);
    if (it != sh.known.end() && !is_final(it->second.status))
      throw std::invalid_argument("test '" + req.test_id
                                  + "' is already submitted");
    assignment a;
    a.test_id = req.test_id;
    a.submitted_at = sh.now();
    sh.known[req.test_id] = a;
    ++sh.open;
  }
  test_batch b;
  b.tests.push_back(std::move(req));
  caf::anon_send(impl_->scheduler, std::move(b));
}

std::vector<assignment> load_balancer_service::get_assignments() const {
  std::lock_guard<std::mutex> guard{impl_->shared->mtx};
  std::vector<assignment> out;
  out.reserve(impl_->shared->known.size());
  for (auto& [id, a] : impl_->shared->known)
    out.push_back(a);
  return out;
}

bool load_balancer_service::complete_test(const std::string& test_id,
                                          const test_result& result) {
  impl_->require_running();
  report_batch b;
  {
    std::lock_guard<std::mutex> guard{impl_->shared->mtx};
    auto it = impl_->shared->placed.find(test_id);
    if (it == impl_->shared->placed.end())
      return false;
    b.slot = it->second.slot;
    work_report r;
    r.ref = it->second.ref;
    r.gen = it->second.gen;
    r.success = result.success;
    r.exec_seconds = result.execution_time;
    r.exit_code = result.exit_code;
    r.error = result.error;
    r.output_tail = result.output_tail;
    b.items.push_back(std::move(r));
    impl_->shared->placed.erase(it);
  }
  caf::anon_send(impl_->scheduler, std::move(b));
  return true;
}

bool load_balancer_service::start_test(const std::string& test_id) {
  std::lock_guard<std::mutex> guard{impl_->shared->mtx};
  auto it = impl_->shared->known.find(test_id);
  if (it == impl_->shared->known.end()
      || it->second.status != test_status::assigned)
    return false;
  it->second.status = test_status::running;
  it->second.started_at = impl_->shared->now();
  return true;
}

void load_balancer_service::cancel_test(const std::string& test_id) {
  impl_->require_running();
  caf::anon_send(impl_->scheduler, cancel_atom::value, test_id);
}

void load_balancer_service::on_completion(completion_callback f) {
  impl_->callback = std::move(f);
}

bool load_balancer_service::wait_idle(double timeout_seconds) const {
  std::unique_lock<std::mutex> lock{impl_->shared->mtx};
  return impl_->shared->idle.wait_for(
    lock, std::chrono::duration<double>(timeout_seconds),
    [&] { return impl_->shared->open == 0; });
}

std::string load_balancer_service::metrics_json() const {
  impl_->require_running();
  caf::scoped_actor self{*impl_->sys};
  std::string out = "{}";
  self->request(impl_->scheduler, std::chrono::seconds(10), stats_atom::value)
    .receive([&](std::string& j) { out = std::move(j); }, [&](caf::error&) {});
  return out;
}

} // namespace alb
