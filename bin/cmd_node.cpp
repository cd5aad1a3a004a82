// `alb node`: a process that attaches worker actors to a coordinator and
// runs the tests it is given as child processes.

#include "bin/commands.hpp"

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>

#include "actors/cluster_net.hpp"
#include "actors/coordinator_client.hpp"
#include "actors/node.hpp"
#include "actors/node_host.hpp"
#include "actors/system.hpp"
#include "bin/cluster_cli.hpp"
#include "bin/common.hpp"
#include "runtime/byte_size.hpp"
#include "runtime/config.hpp"
#include "runtime/test_logs.hpp"

namespace alb::cli {

namespace {

struct node_flags {
  std::string coordinator;
  int workers = 1;
  int slots = 0;
  double memory = -1;
  int cores = -1;
  std::string accelerators;
  std::string software;
  std::vector<std::string> tags;
  std::string token_file;
  std::string name;
  double connect_timeout = 10;
  double reconnect_timeout = 60;
  std::string log_level = "INFO";
  std::string log_format = "text";
  int threads = 2;
  tls_options tls;
  std::string log_dir;
  std::string max_output = "64MiB";
  size_t log_keep = 1000;
  std::string log_max_bytes = "1GiB";
};

// A size flag's value, range-checked; throws cluster_error naming the flag.
uint64_t size_flag(const std::string& flag, const std::string& text) {
  auto v = parse_byte_size(text);
  if (!v)
    throw cluster_error{flag + ": '" + text
                        + "' is not a size (bytes, or e.g. 64MiB, 512K)"};
  return *v;
}

// Where a node's per-test logs go unless --log-dir says: a node named with
// --name keeps them across restarts; an unnamed one (HOSTNAME-PID, never
// the same twice) gets a private directory removed when it stops.
std::string default_log_dir(const node_flags& f, const std::string& node) {
  if (f.name.empty())
    return {};
  auto* tmp = std::getenv("TMPDIR");
  std::string name = node;
  std::replace(name.begin(), name.end(), '/', '_');
  return std::string{tmp && *tmp ? tmp : "/tmp"} + "/alb-"
         + std::to_string(::getuid()) + "/node-" + name + "/logs";
}

int run_node(const node_flags& f) {
  cluster_log log{"node", normalize_log_level(f.log_level, "--log-level"),
                  parse_log_format(f.log_format, "--log-format")};
  std::pair<std::string, uint16_t> ep;
  node_resources res;
  std::string token;
  std::vector<worker_capabilities> caps;
  std::unique_ptr<tls_material> tls;
  std::string gpus_line;
  uint64_t max_output = default_max_output;
  test_log_options log_opts;
  try {
    ep = parse_coordinator_url(f.coordinator);
    res = detect_resources();
    if (f.cores > 0)
      res.cores = f.cores;
    if (f.memory >= 0)
      res.memory_gb = f.memory;
    if (!f.accelerators.empty()) {
      res.accelerators = parse_accelerators(f.accelerators);
    } else {
      std::string warning;
      auto gpus = detect_cuda_devices(&warning);
      if (!warning.empty())
        log.warn(warning);
      for (auto& g : gpus) {
        res.accelerators["cuda"] += 1;
        res.devices["cuda"].push_back(g.index);
        gpus_line += (gpus_line.empty() ? "" : ", ") + std::to_string(g.index)
                     + " " + g.name + " ("
                     + std::to_string(static_cast<long long>(g.memory_mib))
                     + " MiB)";
      }
    }
    // Declared versions win over detected ones (e.g. a python the node's
    // tests really use).
    for (auto& [name, version] : parse_software(f.software))
      res.software[name] = version;
    res.tags = f.tags;
    if (!f.token_file.empty()) {
      std::string warning;
      token = read_token_file(f.token_file, &warning);
      if (!warning.empty())
        log.warn(warning);
    }
    auto name = f.name.empty() ? res.hostname + "-" + std::to_string(::getpid())
                               : f.name;
    caps = split_resources(res, f.workers, name, f.slots);
    tls = load_tls(f.tls, [&log](const std::string& w) { log.warn(w); });
    max_output = size_flag("--max-output", f.max_output);
    if (auto why = check_max_output(max_output); !why.empty())
      throw cluster_error{"--max-output: " + why};
    log_opts.max_total_bytes = size_flag("--log-max-bytes", f.log_max_bytes);
    log_opts.max_tests = f.log_keep;
  } catch (const cluster_error& e) {
    std::cerr << "alb node: error: " << e.what() << "\n";
    return 2;
  }
  auto node_name
    = caps.front().worker_id.substr(0, caps.front().worker_id.rfind('/'));
  log_opts.dir = f.log_dir.empty() ? default_log_dir(f, node_name) : f.log_dir;
  std::string log_error;
  auto logs = test_log_store::open(log_opts, log_error);
  if (!logs) {
    std::cerr << "alb node: error: --log-dir: " << log_error << "\n";
    return 2;
  }
  block_stop_signals();
  caf::actor_system_config cfg;
  configure_system(cfg, f.threads, false);
  load_network(cfg, tls.get());
  caf::actor_system sys{cfg};
  node_host_options o;
  o.host = ep.first;
  o.port = ep.second;
  o.endpoint = f.coordinator;
  o.node = node_name;
  o.caps = std::move(caps);
  o.token = token;
  o.tls = tls != nullptr;
  o.connect_timeout = f.connect_timeout;
  o.reconnect_timeout = f.reconnect_timeout;
  o.summary = std::to_string(f.workers) + " workers, "
              + std::to_string(o.caps.front().max_concurrent_tests)
              + " slots each, " + std::to_string(res.cores) + " cores, "
              + std::to_string(res.memory_gb) + " GB";
  o.stop_requested = [](double seconds) { return wait_for_signal(seconds); };
  o.info = [&log](const std::string& line) { log.info(line); };
  if (!gpus_line.empty())
    log.info("GPUs from nvidia-smi: " + gpus_line);
  o.error = [&log](const std::string& line) { log.error(line); };
  if (log.enabled(log_level::debug))
    o.debug = [&log](const std::string& line) { log.debug(line); };
  o.logs = logs;
  o.max_output = max_output;
  log.info("test logs in " + logs->dir() + " (max_output "
           + format_bytes(max_output) + " per test)");
  return run_node_host(sys, o);
}

} // namespace

void add_node(CLI::App& app, int& rc) {
  auto f = std::make_shared<node_flags>();
  auto* cmd = app.add_subcommand(
    "node", "Attach this machine's workers to a coordinator");
  cmd->footer(
    "Connects to `alb coordinator` and hosts --workers worker actors there.\n"
    "Tests with a command run as child processes (own process group, killed\n"
    "on timeout); tests without one are simulated. Capabilities come from\n"
    "the machine (nproc, /proc/meminfo, nvidia-smi) unless given by flags.\n"
    "GPUs: without --accelerators the node runs `nvidia-smi --query-gpu=\n"
    "index,memory.total,name --format=csv` (found on PATH). A test needing\n"
    "cuda:N holds N specific devices while it runs and sees exactly those in\n"
    "CUDA_VISIBLE_DEVICES (rocm: HIP_/ROCR_VISIBLE_DEVICES); a test needing\n"
    "none sees none (the variable is set to \"\"). Software: the node offers\n"
    "os and python (detected) plus --software NAME=VERSION entries; tests\n"
    "match them with required_software = [\"torch >= 2.1\"] and ask for\n"
    "--tags with tags = [\"...\"].\n"
    "With one worker (the default) the node is one pool: its --slots tests\n"
    "at once (default: its cores) draw on the whole memory, cores and\n"
    "accelerators, so an 8 GB node with 2 slots runs a 6 GB test; more\n"
    "--workers split them evenly instead. The join token is read from\n"
    "--token-file (never the command line). Stops on SIGINT/SIGTERM (its\n"
    "tests are requeued). When the coordinator goes away (stopped, killed or\n"
    "unreachable) the node kills the commands it was running (a coordinator\n"
    "with a journal runs them again) and keeps trying to attach again, with\n"
    "backoff, for --reconnect-timeout seconds; it rejoins under the same\n"
    "node name and is recognised. --reconnect-timeout 0 stops at once.\n"
    "A TLS coordinator needs --tls-cert, --tls-key and --tls-ca: a\n"
    "certificate signed by the CA the coordinator trusts, and that CA.\n"
    "Exit status: 0 ok (stopped by signal, or the coordinator went away with\n"
    "--reconnect-timeout 0), 1 refused, unreachable or not back in time,\n"
    "2 bad input.\n"
    "Each test's stdout and stderr go to DIR/<test>.stdout and .stderr\n"
    "(--log-dir; default: with --name, $TMPDIR/alb-UID/node-NAME/logs,\n"
    "kept across restarts; without, a private directory removed when the\n"
    "node stops). The oldest logs are deleted past --log-keep tests or\n"
    "--log-max-bytes in all. A test writing more than --max-output bytes\n"
    "to stdout and stderr together (its own max_output key wins) is killed\n"
    "while it runs and fails with 'output limit exceeded'; its log files\n"
    "then hold exactly the first max_output bytes. `alb logs ID` reads\n"
    "them through the coordinator.\n\n"
    "Example: alb node --coordinator 10.0.0.5:8080 --slots 4 "
    "--token-file ~/.alb-token");
  cmd
    ->add_option("--coordinator", f->coordinator,
                 "HOST:PORT (or alb://HOST:PORT) to attach to")
    ->required();
  cmd->add_option("--workers", f->workers, "Worker actors on this node")
    ->default_val(1)
    ->check(CLI::Range(1, 4096));
  cmd
    ->add_option("--slots", f->slots,
                 "Tests each worker runs at once (default: its cores)")
    ->check(CLI::Range(1, 100000));
  cmd->add_option("--memory", f->memory, "Memory in GB (default: detected)")
    ->check(CLI::Range(0.0, 1e6));
  cmd->add_option("--cores", f->cores, "CPU cores (default: detected)")
    ->check(CLI::Range(1, 100000));
  cmd->add_option("--accelerators", f->accelerators,
                  "Accelerators as TYPE:COUNT[,...], e.g. cuda:2 (default: "
                  "nvidia-smi)");
  cmd->add_option("--software", f->software,
                  "Installed software as NAME=VERSION[,...], e.g. "
                  "torch=2.3,cuda=12.1 (added to the detected os and python)");
  cmd
    ->add_option("--tags", f->tags,
                 "Labels for every worker, e.g. gpu-rack,fast (tests ask "
                 "for them with tags = [...])")
    ->delimiter(',');
  cmd->add_option("--token-file", f->token_file,
                  "File holding the coordinator's join token");
  cmd->add_option("--name", f->name,
                  "Node name (default HOSTNAME-PID); a node that reconnects "
                  "with the same name is recognised");
  cmd
    ->add_option("--connect-timeout", f->connect_timeout,
                 "Seconds to keep trying to reach the coordinator")
    ->default_val(10)
    ->check(CLI::Range(0.0, 86400.0));
  cmd
    ->add_option("--reconnect-timeout", f->reconnect_timeout,
                 "Seconds to keep trying to attach again after the "
                 "coordinator went away (0 = stop at once)")
    ->default_val(60)
    ->check(CLI::Range(0.0, 86400.0));
  add_log_flags(cmd, &f->log_level, f->log_format);
  cmd->add_option("--threads", f->threads, "Actor threads")
    ->default_val(2)
    ->check(CLI::Range(1, 256));
  cmd->add_option("--log-dir", f->log_dir,
                  "Directory of the per-test stdout/stderr logs (see below)");
  cmd
    ->add_option("--max-output", f->max_output,
                 "Cap on a test's stdout+stderr, e.g. 64MiB (1KiB-1TiB); "
                 "past it the test fails with 'output limit exceeded'")
    ->default_val("64MiB");
  cmd
    ->add_option("--log-keep", f->log_keep,
                 "Tests whose logs are kept (the oldest are deleted)")
    ->default_val(1000)
    ->check(CLI::Range(1, 100000000));
  cmd
    ->add_option("--log-max-bytes", f->log_max_bytes,
                 "Bytes all kept logs may take (the oldest are deleted)")
    ->default_val("1GiB");
  add_tls_flags(cmd, f->tls);
  cmd->callback(
    [f, &rc] { rc = guarded("node", [f] { return run_node(*f); }); });
}

} // namespace alb::cli
