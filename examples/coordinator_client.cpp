// The reference's "Integrating with External Systems", in C++: an external
// program hands real tests to a running cluster through
// alb::coordinator_client and reads how each ended.
//
//   example_coordinator_client HOST:PORT TOKEN_FILE [CERT KEY CA]
//
// Without arguments it starts a coordinator and one node itself (the `alb`
// binary of this build) on 127.0.0.1, so it runs anywhere the build does.

#include <csignal>
#include <cstdio>
#include <fstream>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "actors/coordinator_client.hpp"
#include "actors/node.hpp"
#include "runtime/process.hpp"

namespace {

/// A coordinator and a node of our own, stopped on destruction.
struct local_cluster {
  alb::process coordinator;
  alb::process node;
  std::string endpoint;
  std::string token_file;

  local_cluster() {
    char dir[] = "/tmp/alb-example-XXXXXX";
    if (!::mkdtemp(dir))
      throw std::runtime_error{"mkdtemp failed"};
    token_file = std::string{dir} + "/token";
    {
      std::random_device rd;
      std::ofstream out{token_file};
      for (int i = 0; i < 4; ++i)
        out << std::hex << rd();
      out << "\n";
    }
    ::chmod(token_file.c_str(), 0600);
    int fds[2];
    if (::pipe(fds) != 0)
      throw std::runtime_error{"pipe failed"};
    coordinator = spawn({ALB_BINARY, "coordinator", "--port", "0", "--no-db",
                         "--token-file", token_file, "--log-level", "WARNING"},
                        fds[1]);
    ::close(fds[1]);
    // First line: "alb coordinator: listening on 127.0.0.1:PORT (...)".
    std::string line;
    char c;
    while (::read(fds[0], &c, 1) == 1 && c != '\n')
      line += c;
    ::close(fds[0]);
    auto at = line.find("listening on ");
    if (at == std::string::npos)
      throw std::runtime_error{"the coordinator did not start"};
    endpoint = line.substr(at + 13, line.find(' ', at + 13) - at - 13);
    node = spawn({ALB_BINARY, "node", "--coordinator", endpoint, "--slots", "2",
                  "--token-file", token_file, "--reconnect-timeout", "0",
                  "--log-level", "WARNING"},
                 -1);
  }

  ~local_cluster() {
    for (auto* p : {&coordinator, &node})
      if (p->running()) {
        p->kill_group(SIGTERM);
        p->wait();
      }
    ::unlink(token_file.c_str());
    ::rmdir(token_file.substr(0, token_file.rfind('/')).c_str());
  }

  // alb's own process class: the child dies with this program.
  static alb::process spawn(std::vector<std::string> args, int out) {
    alb::spawn_options o;
    o.argv = std::move(args);
    o.stdout_fd = out;
    std::string error;
    auto p = alb::process::spawn(o, error);
    if (!p.running())
      throw std::runtime_error{"cannot start alb: " + error};
    return p;
  }
};

} // namespace

int main(int argc, char** argv) {
  std::unique_ptr<local_cluster> own;
  alb::coordinator_client_options opts;
  try {
    if (argc >= 3) {
      opts.endpoint = argv[1];
      opts.token = alb::read_token_file(argv[2], nullptr);
      if (argc >= 6)
        opts.tls = {argv[3], argv[4], argv[5], ""};
    } else {
      own = std::make_unique<local_cluster>();
      opts.endpoint = "alb://" + own->endpoint;
      opts.token = alb::read_token_file(own->token_file, nullptr);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }

  // Create the integration with the coordinator and start it.
  alb::coordinator_client client{opts};
  try {
    client.connect();
  } catch (const alb::coordinator_client_error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }

  // Tell us about each test as it ends.
  client.on_outcome([](const alb::cluster_outcome& o) {
    std::printf("test %s %s on %s (exit %d)\n", o.test_id.c_str(),
                o.success ? "passed" : "failed", o.worker_id.c_str(),
                o.exit_code);
  });

  // Submit tasks: real commands with their requirements.
  std::vector<alb::cluster_test> tests;
  for (int i = 0; i < 6; ++i) {
    alb::cluster_test t;
    t.req.test_id = "example-" + std::to_string(i);
    t.req.model_id = "bert-base-uncased";
    t.req.minimum_memory = 0.1;
    t.req.priority = 3;
    t.req.timeout = 30;
    t.command = {"sh", "-c", "echo running test " + std::to_string(i)};
    tests.push_back(std::move(t));
  }
  size_t accepted = 0;
  try {
    accepted = client.submit(std::move(tests));
  } catch (const alb::coordinator_client_error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
  std::printf("%zu tests submitted to %s\n", accepted,
              client.address().c_str());

  // Wait for every outcome (at most a minute), look at the cluster, stop.
  auto r = client.wait(60);
  std::printf("open: %zu, coordinator lost: %s\n", r.open,
              r.disconnected ? "yes" : "no");
  std::printf("stats: %.200s...\n", client.stats().c_str());
  client.close();
  return r.complete() ? 0 : 1;
}
