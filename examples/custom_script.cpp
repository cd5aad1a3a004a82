// The reference's "Using the API in Custom Scripts", in C++: register a
// worker, report its load, submit tests, read the assignments, run the tests
// (here: pretend to), report the results, stop.

#include <cstdio>
#include <string>

#include "actors/load_balancer_service.hpp"

int main() {
  alb::load_balancer_service balancer;
  int completed = 0;
  balancer.on_completion(
    [&](const alb::assignment& a, const alb::test_result& r) {
      ++completed;
      std::printf("test %s ended on %s: %s\n", a.test_id.c_str(),
                  r.worker_id.c_str(), r.success ? "passed" : "failed");
    });
  balancer.start();

  // Register workers.
  std::string worker_id = "worker1";
  alb::worker_capabilities caps;
  caps.hardware.cpu = {8, 3000};
  caps.hardware.memory = {16, 14.5};
  caps.hardware.gpu = {1, true};
  caps.available_memory = 14.5;
  caps.cpu_cores = 8;
  caps.available_accelerators = {{"cuda", 1}};
  balancer.register_worker(worker_id, caps);

  // Update worker load.
  alb::worker_load load;
  load.cpu_utilization = 25.0;
  load.memory_utilization = 30.0;
  load.gpu_utilization = 15.0;
  balancer.update_worker_load(worker_id, load);

  // Submit tests.
  for (int i = 0; i < 10; ++i) {
    alb::test_requirements req;
    req.test_id = "test" + std::to_string(i);
    req.model_id = "bert-base-uncased";
    req.minimum_memory = 4.0;
    req.priority = 3;
    if (i % 2 == 0)
      req.required_accelerators = {{"cuda", 1}};
    balancer.submit_test(req);
  }

  // Process assignments until every test ran: a 14.5 GB worker with one GPU
  // holds at most three 4 GB tests, and one GPU test, at a time.
  for (int round = 0; round < 100 && completed < 10; ++round) {
    for (auto& a : balancer.get_assignments()) {
      if (a.status != alb::test_status::assigned)
        continue;
      std::printf("Test %s assigned to %s\n", a.test_id.c_str(),
                  a.worker_id.c_str());
      balancer.start_test(a.test_id);
      alb::test_result r;
      r.success = true;
      r.execution_time = 0.01;
      balancer.complete_test(a.test_id, r);
    }
    balancer.wait_idle(0.05);
  }
  std::printf("%s\n", balancer.metrics_json().c_str());
  balancer.stop();
  return completed == 10 ? 0 : 1;
}
