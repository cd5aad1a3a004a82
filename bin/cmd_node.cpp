// `alb node`: a process that attaches worker actors to a coordinator and
// runs the tests it is given as child processes.

#include "bin/commands.hpp"

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
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
#include "metrics/node_metrics.hpp"
#include "metrics/server.hpp"
#include "runtime/byte_size.hpp"
#include "runtime/cgroup.hpp"
#include "runtime/config.hpp"
#include "runtime/test_logs.hpp"

namespace alb::cli {

namespace {

std::string format_gb(double gb) {
  std::ostringstream out;
  out << gb;
  return out.str();
}

struct node_flags {
  std::string config_path;
  std::string coordinator;
  int workers = 0;
  int slots = 0;
  double memory = -1;
  int cores = -1;
  std::string accelerators;
  std::string software;
  /// The file's `accelerators` table (an empty one means none, not
  /// "detect").
  std::optional<std::map<std::string, int>> file_accelerators;
  std::vector<std::string> tags;
  std::string token_file;
  std::string name;
  double connect_timeout = 10;
  double reconnect_timeout = 60;
  std::string log_level = "INFO";
  std::string log_format = "text";
  int threads = 2;
  int metrics_port = -1;
  std::string metrics_bind = "127.0.0.1";
  bool metrics_allow_remote = false;
  tls_options tls;
  std::string log_dir;
  std::string max_output = "64MiB";
  size_t log_keep = 1000;
  std::string log_max_bytes = "1GiB";
  /// The file's `software` table (added to --software's entries, which win).
  std::map<std::string, std::string> file_software;
  /// --no-cgroups, or `cgroups = false` in the file.
  bool no_cgroups = false;
  /// Long names of the flags given on the command line (they override the
  /// file).
  std::set<std::string> given;
  bool has(const char* flag) const { return given.count(flag) > 0; }
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

/// The node's file (`--config`) read strictly: any unknown key, in [node]
/// or elsewhere, is an error. Nothing when no file was given.
config load_node_file(const std::string& path) {
  if (path.empty())
    return {};
  auto cfg = load_config(path);
  if (!cfg.warnings.empty()) {
    auto w = cfg.warnings.front();
    const std::string suffix = "; ignored";
    if (w.size() > suffix.size()
        && w.compare(w.size() - suffix.size(), suffix.size(), suffix) == 0)
      w.resize(w.size() - suffix.size());
    throw config_error(w);
  }
  apply_environment(cfg);
  return cfg;
}

/// `f` with every setting the flags leave open taken from the file's [node]
/// (and [tls]) section: flags > file > built-in defaults.
node_flags merge_node_file(node_flags f, const config& cfg) {
  auto& n = cfg.node;
  if (!f.has("--coordinator") && n.coordinator)
    f.coordinator = *n.coordinator;
  if (!f.has("--name") && n.name)
    f.name = *n.name;
  if (!f.has("--slots") && !f.has("--workers") && n.slots)
    f.slots = *n.slots;
  if (!f.has("--memory") && n.memory_gb)
    f.memory = *n.memory_gb;
  if (!f.has("--cores") && n.cores)
    f.cores = *n.cores;
  if (!f.has("--accelerators") && n.accelerators)
    f.file_accelerators = n.accelerators;
  if (!f.has("--tags") && n.tags)
    f.tags = *n.tags;
  if (!f.has("--token-file") && n.token_file)
    f.token_file = *n.token_file;
  if (!f.has("--connect-timeout") && n.connect_timeout)
    f.connect_timeout = *n.connect_timeout;
  if (!f.has("--reconnect-timeout") && n.reconnect_timeout)
    f.reconnect_timeout = *n.reconnect_timeout;
  if (!f.has("--log-level"))
    f.log_level = n.log_level ? *n.log_level : cfg.log_level;
  if (!f.has("--log-format") && n.log_format)
    f.log_format = *n.log_format;
  if (!f.has("--threads") && n.threads)
    f.threads = *n.threads;
  if (!f.has("--metrics-port") && n.metrics_port)
    f.metrics_port = *n.metrics_port;
  if (!f.has("--metrics-bind") && n.metrics_bind)
    f.metrics_bind = *n.metrics_bind;
  if (!f.has("--metrics-allow-remote") && n.metrics_allow_remote)
    f.metrics_allow_remote = *n.metrics_allow_remote;
  if (!f.has("--software") && n.software)
    f.file_software = *n.software;
  if (!f.has("--log-dir") && n.log_dir)
    f.log_dir = *n.log_dir;
  if (!f.has("--max-output") && n.max_output)
    f.max_output = std::to_string(*n.max_output);
  if (!f.has("--log-keep") && n.log_keep)
    f.log_keep = static_cast<size_t>(*n.log_keep);
  if (!f.has("--log-max-bytes") && n.log_max_bytes)
    f.log_max_bytes = std::to_string(*n.log_max_bytes);
  if (!f.has("--no-cgroups") && n.cgroups)
    f.no_cgroups = !*n.cgroups;
  f.tls = merge_tls(f.tls, cfg.tls);
  return f;
}

int run_node(node_flags f) {
  auto file = load_node_file(f.config_path);
  f = merge_node_file(std::move(f), file);
  if (f.coordinator.empty())
    throw config_error("no coordinator: give --coordinator HOST:PORT or "
                       "coordinator = \"HOST:PORT\" in the [node] section of "
                       "--config");
  cluster_log log{"node", normalize_log_level(f.log_level, "--log-level"),
                  parse_log_format(f.log_format, "--log-format")};
  if (f.has("--workers")) {
    // A node is one pool: N workers used to split it N ways, so a test
    // that fits the machine did not fit any of them.
    if (f.has("--slots") && f.slots != f.workers)
      throw config_error("--workers " + std::to_string(f.workers)
                         + " and --slots " + std::to_string(f.slots)
                         + " disagree: a node is one pool of resources; "
                           "give --slots only");
    f.slots = f.workers;
    log.warn("--workers " + std::to_string(f.workers) + " means --slots "
             + std::to_string(f.workers)
             + ": one pool of the node's resources, "
             + std::to_string(f.workers) + " tests at once");
  }
  std::pair<std::string, uint16_t> ep;
  node_resources res;
  std::string token;
  std::vector<worker_capabilities> caps;
  std::unique_ptr<tls_material> tls;
  std::string gpus_line;
  uint64_t max_output = default_max_output;
  test_log_options log_opts;
  try {
    try {
      ep = parse_coordinator_url(f.coordinator);
    } catch (const cluster_error& e) {
      // Point at the file when the address came from it.
      if (!f.has("--coordinator") && file.node.coordinator)
        throw cluster_error{file.node.coordinator_origin
                            + ": node.coordinator: " + e.what()};
      throw;
    }
    res = detect_resources();
    if (f.cores > 0)
      res.cores = f.cores;
    if (f.memory >= 0)
      res.memory_gb = f.memory;
    if (!f.accelerators.empty()) {
      res.accelerators = parse_accelerators(f.accelerators);
    } else if (f.file_accelerators) {
      res.accelerators = *f.file_accelerators;
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
    for (auto& [name, version] : f.file_software)
      res.software[name] = version;
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
    // One worker: the node's slots draw on its whole memory, cores and
    // accelerators.
    caps = {node_capabilities(res, name, f.slots)};
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
  if (!f.config_path.empty())
    log.info("settings from " + f.config_path + " (flags override it)");
  // The node's own /metrics: bound before connecting, so a port in use is
  // exit 2 at once.
  std::shared_ptr<metrics::node_metrics> node_metrics;
  std::unique_ptr<metrics::server> metrics_server;
  if (f.metrics_port >= 0) {
    metrics::node_info info;
    info.name = node_name;
    info.slots = caps.front().max_concurrent_tests;
    info.cores = res.cores;
    info.memory_gb = res.memory_gb;
    info.accelerators = res.accelerators;
    node_metrics = std::make_shared<metrics::node_metrics>(info);
    metrics_server = std::make_unique<metrics::server>(
      node_metrics->collectable(), f.metrics_bind,
      static_cast<uint16_t>(f.metrics_port), f.metrics_allow_remote);
    log.info("metrics: " + metrics_server->url());
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
  o.summary = std::to_string(o.caps.front().max_concurrent_tests) + " slots, "
              + std::to_string(res.cores) + " cores, "
              + format_gb(res.memory_gb) + " GB";
  o.stop_requested = [](double seconds) { return wait_for_signal(seconds); };
  o.info = [&log](const std::string& line) { log.info(line); };
  if (!gpus_line.empty())
    log.info("GPUs from nvidia-smi: " + gpus_line);
  o.observer = node_metrics;
  if (node_metrics)
    o.on_connected
      = [node_metrics](bool yes) { node_metrics->set_connected(yes); };
  o.error = [&log](const std::string& line) { log.error(line); };
  if (log.enabled(log_level::debug))
    o.debug = [&log](const std::string& line) { log.debug(line); };
  o.logs = logs;
  o.max_output = max_output;
  log.info("test logs in " + logs->dir() + " (max_output "
           + format_bytes(max_output) + " per test)");
  // A cgroup per test where this node can make one; either way each test
  // runs under a supervisor of its own.
  if (f.no_cgroups) {
    log.info("tests contained by supervisors (cgroups turned off)");
  } else {
    cgroup_set::opening op;
    o.cgroups = cgroup_set::open(op);
    for (auto& stale : op.removed)
      log.warn("removed the cgroup of a node that is gone: " + stale);
    if (o.cgroups)
      log.info("tests run in cgroups under " + o.cgroups->path());
    else
      log.info("tests contained by supervisors (no cgroups: " + op.why_not
               + ")");
  }
  return run_node_host(sys, o);
}

} // namespace

void add_node(CLI::App& app, int& rc) {
  auto f = std::make_shared<node_flags>();
  auto* cmd = app.add_subcommand(
    "node", "Attach this machine's workers to a coordinator");
  cmd->footer(
    "Connects to `alb coordinator` and runs the tests it places here.\n"
    "Tests with a command run as child processes, contained (see below);\n"
    "tests without one are simulated. Capabilities\n"
    "come from the machine (nproc, /proc/meminfo, nvidia-smi) unless given.\n"
    "The node is one pool: its --slots tests at once (default: its cores)\n"
    "draw on its whole memory, cores and accelerators, so an 8 GB node with\n"
    "2 slots runs a 6 GB test. (--workers N is the old spelling of --slots\n"
    "N; it no longer splits the node.)\n"
    "GPUs: without --accelerators the node runs `nvidia-smi --query-gpu=\n"
    "index,memory.total,name --format=csv` (found on PATH). A test needing\n"
    "cuda:N holds N specific devices while it runs and sees exactly those in\n"
    "CUDA_VISIBLE_DEVICES (rocm: HIP_/ROCR_VISIBLE_DEVICES); a test needing\n"
    "none sees none (the variable is set to \"\"). Software: the node offers\n"
    "os and python (detected) plus --software NAME=VERSION entries; tests\n"
    "match them with required_software = [\"torch >= 2.1\"] and ask for\n"
    "--tags with tags = [\"...\"].\n"
    "--config FILE reads the [node] section (one key per flag: coordinator,\n"
    "name, slots, memory, cores, accelerators = { cuda = 2 }, software =\n"
    "{ torch = \"2.3\" }, tags, token_file, connect_timeout,\n"
    "reconnect_timeout, log_level, log_format, threads, log_dir,\n"
    "max_output, log_keep, log_max_bytes, cgroups = false, metrics_port,\n"
    "metrics_bind, metrics_allow_remote) and the [tls]\n"
    "section (cert, key, ca, passphrase_file); flags override the file. An\n"
    "unknown key or a value out of range is an error (exit 2, file:line:col).\n"
    "The join token is read from --token-file (never the command line).\n"
    "Stops on SIGINT/SIGTERM (its tests are requeued). When the coordinator\n"
    "goes away (stopped, killed or unreachable) the node kills the commands\n"
    "it was running (a coordinator with a journal runs them again) and keeps\n"
    "trying to attach again, with backoff, for --reconnect-timeout seconds;\n"
    "it rejoins under the same node name and is recognised.\n"
    "--reconnect-timeout 0 stops at once.\n"
    "It sends the coordinator a heartbeat several times per the\n"
    "coordinator's --node-timeout; a node that missed them (stopped, hung,\n"
    "cut off) is dropped there and its tests requeued: when it hears so it\n"
    "logs `dropped by the coordinator ...`, kills what it ran and joins\n"
    "again under a fresh session.\n"
    "--metrics-port P serves the node's own Prometheus /metrics:\n"
    "alb_node_slots, alb_node_slots_busy, alb_node_tests_started_total,\n"
    "alb_node_tests_ended_total{outcome}, alb_node_test_duration_seconds,\n"
    "alb_node_connected and what the node offers (cores, memory bytes,\n"
    "accelerators).\n"
    "A TLS coordinator needs --tls-cert, --tls-key and --tls-ca: a\n"
    "certificate signed by the CA the coordinator trusts, and that CA.\n"
    "Exit status: 0 ok (stopped by signal, or the coordinator went away with\n"
    "--reconnect-timeout 0), 1 refused, unreachable or not back in time,\n"
    "2 bad input.\n\n"
    "Each test's stdout and stderr go to DIR/<test>.stdout and .stderr\n"
    "(--log-dir; default: with --name, $TMPDIR/alb-UID/node-NAME/logs,\n"
    "kept across restarts; without, a private directory removed when the\n"
    "node stops). The oldest logs are deleted past --log-keep tests or\n"
    "--log-max-bytes in all. A test writing more than --max-output bytes\n"
    "to stdout and stderr together (its own max_output key wins) is killed\n"
    "while it runs and fails with 'output limit exceeded'; its log files\n"
    "then hold exactly the first max_output bytes. `alb logs ID` reads\n"
    "them through the coordinator.\n\n"
    "Containment: every test runs under a supervisor of its own (a child\n"
    "subreaper with a parent-death signal) that kills the test's whole\n"
    "tree, setsid children included, at its end, timeout or cancel and\n"
    "when the node dies. Where the node can create cgroup v2 groups\n"
    "(found from /proc/self/mountinfo and /proc/self/cgroup; as root on\n"
    "Linux 5.14+), each test also runs in its own cgroup\n"
    "(<node's cgroup>/alb-node-PID-START/test-N), killed with cgroup.kill\n"
    "and removed at its end; a node starting up kills and removes the\n"
    "cgroups a node SIGKILLed together with its supervisors left behind.\n"
    "--no-cgroups (or cgroups = false) keeps to supervisors. The start\n"
    "line says which one is used.\n\n"
    "Examples: alb node --coordinator 10.0.0.5:8080 --slots 4 "
    "--token-file ~/.alb-token\n"
    "          alb node --config /etc/alb/node.toml");
  cmd
    ->add_option("--config", f->config_path,
                 "TOML (or JSON) file with a [node] section")
    ->check(CLI::ExistingFile);
  cmd->add_option("--coordinator", f->coordinator,
                  "HOST:PORT (or alb://HOST:PORT) to attach to (required "
                  "here or in --config)");
  cmd
    ->add_option("--slots", f->slots,
                 "Tests the node runs at once (default: its cores)")
    ->check(CLI::Range(1, 100000));
  cmd
    ->add_option("--workers", f->workers,
                 "Old spelling of --slots (the node is one pool)")
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
                 "Seconds to keep trying to reach the coordinator (default "
                 "10)")
    ->check(CLI::Range(0.0, 86400.0));
  cmd
    ->add_option("--reconnect-timeout", f->reconnect_timeout,
                 "Seconds to keep trying to attach again after the "
                 "coordinator went away (0 = stop at once; default 60)")
    ->check(CLI::Range(0.0, 86400.0));
  add_log_flags(cmd, &f->log_level, f->log_format);
  cmd->add_option("--threads", f->threads, "Actor threads (default 2)")
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
  cmd
    ->add_option("--metrics-port", f->metrics_port,
                 "Serve this node's Prometheus /metrics on this port (0 = "
                 "any free port, printed; default off)")
    ->check(CLI::Range(0, 65535));
  cmd->add_option("--metrics-bind", f->metrics_bind,
                  "Address the node's /metrics binds to (default 127.0.0.1)");
  cmd->add_flag("--metrics-allow-remote", f->metrics_allow_remote,
                "Allow a non-loopback --metrics-bind address");
  cmd->add_flag("--no-cgroups", f->no_cgroups,
                "Do not put tests in cgroups of their own (supervisors "
                "only; see below)");
  add_tls_flags(cmd, f->tls);
  cmd->callback([f, cmd, &rc] {
    for (auto* opt : cmd->get_options())
      if (opt->count() > 0)
        f->given.insert(opt->get_name());
    rc = guarded("node", [f] { return run_node(*f); });
  });
}

} // namespace alb::cli
