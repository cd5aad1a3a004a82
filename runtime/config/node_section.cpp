// The `[node]` section: what `alb node --config FILE` reads. One key per
// node flag, each range-checked like its flag; unknown keys are errors (a
// typo in a node's file would otherwise silently fall back to a default).

#include "runtime/config/reader.hpp"
#include "runtime/log_format.hpp"

namespace alb::config_detail {

namespace {

using node = toml::node;
using str = std::string;

// The same bounds as the flags of `alb node`.
constexpr int64_t max_slots = 100000;
constexpr double max_memory_gb = 1e6;
constexpr double max_wait_seconds = 86400;

double seconds_up_to_a_day(reader& r, const node& n, const str& p) {
  auto x = r.number(n, p, bound::non_negative);
  if (x > max_wait_seconds)
    r.fail(n, p,
           "must be at most " + num(max_wait_seconds) + " s, got " + num(x));
  return x;
}

const field<node_config> node_fields[] = {
  {"coordinator",
   [](reader& r, const node& n, const str& p, node_config& x) {
     x.coordinator = r.nonempty_string(n, p);
     x.coordinator_origin = r.where(n.source());
   }},
  {"name", [](reader& r, const node& n, const str& p,
              node_config& x) { x.name = r.nonempty_string(n, p); }},
  {"slots", [](reader& r, const node& n, const str& p,
               node_config& x) { x.slots = r.integer(n, p, 1, max_slots); }},
  {"memory",
   [](reader& r, const node& n, const str& p, node_config& x) {
     auto gb = r.number(n, p, bound::non_negative);
     if (gb > max_memory_gb)
       r.fail(n, p,
              "must be at most " + num(max_memory_gb) + " GB, got " + num(gb));
     x.memory_gb = gb;
   }},
  {"cores", [](reader& r, const node& n, const str& p,
               node_config& x) { x.cores = r.integer(n, p, 1, max_slots); }},
  {"accelerators",
   [](reader& r, const node& n, const str& p, node_config& x) {
     std::map<std::string, int> acc;
     for (auto&& [k, v] : r.table(n, p)) {
       if (k.str().empty())
         r.fail(v, p, "accelerator types must not be empty");
       acc[std::string{k.str()}] = r.integer(v, child(p, k.str()), 0, 4096);
     }
     x.accelerators = std::move(acc);
   }},
  {"tags", [](reader& r, const node& n, const str& p,
              node_config& x) { x.tags = r.strings(n, p, true); }},
  {"token_file",
   [](reader& r, const node& n, const str& p, node_config& x) {
     x.token_file = r.nonempty_string(n, p);
   }},
  {"connect_timeout",
   [](reader& r, const node& n, const str& p, node_config& x) {
     x.connect_timeout = seconds_up_to_a_day(r, n, p);
   }},
  {"reconnect_timeout",
   [](reader& r, const node& n, const str& p, node_config& x) {
     x.reconnect_timeout = seconds_up_to_a_day(r, n, p);
   }},
  {"log_level", [](reader& r, const node& n, const str& p,
                   node_config& x) { x.log_level = read_log_level(r, n, p); }},
  {"log_format",
   [](reader& r, const node& n, const str& p, node_config& x) {
     auto s = r.string(n, p);
     try {
       parse_log_format(s, p);
     } catch (const std::exception&) {
       r.fail(n, p, "unknown log format '" + s + "' (expected text or json)");
     }
     x.log_format = s;
   }},
  {"threads", [](reader& r, const node& n, const str& p,
                 node_config& x) { x.threads = r.integer(n, p, 1, 256); }},
  {"metrics_port",
   [](reader& r, const node& n, const str& p, node_config& x) {
     x.metrics_port = r.integer(n, p, 0, 65535);
   }},
  {"metrics_bind",
   [](reader& r, const node& n, const str& p, node_config& x) {
     x.metrics_bind = r.nonempty_string(n, p);
   }},
  {"metrics_allow_remote",
   [](reader& r, const node& n, const str& p, node_config& x) {
     x.metrics_allow_remote = r.boolean(n, p);
   }},
  {"software",
   [](reader& r, const node& n, const str& p, node_config& x) {
     // As --software NAME=VERSION: names and versions without spaces or
     // comparison characters, so a requirement can always name them.
     std::map<std::string, std::string> sw;
     for (auto&& [k, v] : r.table(n, p)) {
       auto name = std::string{k.str()};
       auto at = child(p, name);
       if (name.empty() || name.find_first_of(" \t<>!=,") != str::npos)
         r.fail(v, p, "bad software name '" + name + "'");
       if (!v.is_string())
         r.fail(v, at,
                "expected a version string such as \"12.1\" (\"\" for "
                "any), got "
                  + type_name(v));
       auto version = r.string(v, at);
       if (version.find_first_of(" \t<>!=,") != str::npos)
         r.fail(v, at, "bad version '" + version + "'");
       sw[name] = version;
     }
     x.software = std::move(sw);
   }},
  {"log_dir", [](reader& r, const node& n, const str& p,
                 node_config& x) { x.log_dir = r.nonempty_string(n, p); }},
  {"max_output",
   [](reader& r, const node& n, const str& p, node_config& x) {
     auto v = r.byte_size(n, p);
     if (auto why = check_max_output(v); !why.empty())
       r.fail(n, p, why);
     x.max_output = v;
   }},
  {"log_keep",
   [](reader& r, const node& n, const str& p, node_config& x) {
     x.log_keep = r.integer(n, p, 1, 100000000);
   }},
  {"log_max_bytes",
   [](reader& r, const node& n, const str& p, node_config& x) {
     auto v = r.byte_size(n, p);
     if (v == 0)
       r.fail(n, p, "must be positive");
     x.log_max_bytes = v;
   }},
  {"cgroups", [](reader& r, const node& n, const str& p,
                 node_config& x) { x.cgroups = r.boolean(n, p); }},
};

} // namespace

void read_node_section(reader& r, const node& n, const str& p, node_config& x) {
  read_fields_strict(
    r, r.table(n, p), p, x, node_fields,
    {{"workers", "a node is one pool of resources: say 'slots' for how many "
                 "tests it runs at once"},
     {"tls", "TLS settings go in the top-level [tls] section (cert, key, ca, "
             "passphrase_file)"}});
}

} // namespace alb::config_detail
