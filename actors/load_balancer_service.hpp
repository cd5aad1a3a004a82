#pragma once

// The embedding API, as the original's `LoadBalancerService`: start it,
// register workers (whose tests you run yourself), report their load, submit
// tests, read the assignments, report results, stop it. Behind it runs the
// same scheduler actor as every other alb process. CAF-free header.
//
//   alb::load_balancer_service lb;
//   lb.start();
//   lb.register_worker("worker1", caps);
//   lb.submit_test(requirements);
//   for (auto& a : lb.get_assignments()) ... run a.test_id on a.worker_id ...
//   lb.complete_test("test0", result);
//   lb.stop();

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/model.hpp"
#include "runtime/scheduler_config.hpp"

namespace alb {

/// A load balancer running in this process.
class load_balancer_service {
public:
  /// Called when a test ends, on the balancer's thread.
  using completion_callback
    = std::function<void(const assignment&, const test_result&)>;

  /// Creates a stopped service with these scheduler settings.
  explicit load_balancer_service(scheduler_config cfg = {});

  /// Stops the service if running.
  ~load_balancer_service();

  load_balancer_service(const load_balancer_service&) = delete;
  load_balancer_service& operator=(const load_balancer_service&) = delete;

  /// Starts the balancer (actor system and scheduler).
  void start();

  /// Stops the balancer; tests not ended are cancelled.
  void stop();

  /// Whether the service is running.
  bool running() const;

  /// Registers a worker whose tests the caller runs. Blocks until the
  /// scheduler accepted it; throws std::invalid_argument when it did not.
  void register_worker(const std::string& worker_id,
                       worker_capabilities capabilities);

  /// Removes a worker; the tests it held go back to the queue.
  void unregister_worker(const std::string& worker_id);

  /// Reports a worker's load.
  void update_worker_load(const std::string& worker_id, worker_load load);

  /// Submits a test. Throws std::invalid_argument on invalid requirements.
  void submit_test(test_requirements requirements);

  /// Every test the service knows: placed (with its worker), waiting, and
  /// ended (with outcome). Placements arrive asynchronously.
  std::vector<assignment> get_assignments() const;

  /// Reports the result of a test assigned to one of the caller's workers.
  /// Returns false when the test is not assigned (unknown or ended).
  bool complete_test(const std::string& test_id, const test_result& result);

  /// Marks a test assigned to one of the caller's workers as started.
  bool start_test(const std::string& test_id);

  /// Withdraws a test.
  void cancel_test(const std::string& test_id);

  /// Sets the completion callback (call before start()).
  void on_completion(completion_callback f);

  /// Blocks until no test is open or `timeout_seconds` passed; returns
  /// whether everything ended.
  bool wait_idle(double timeout_seconds) const;

  /// Current metrics as JSON text (the reference's metric names).
  std::string metrics_json() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace alb
