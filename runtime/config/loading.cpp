// Loading in phases: files (TOML or JSON) merged onto the defaults, the
// shipped scenarios, the environment, and the file a command is given.

#include "runtime/config/reader.hpp"
#include "runtime/config/text.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

namespace alb {

using config_detail::lower;

namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size()
         && lower(s.substr(s.size() - suffix.size())) == suffix;
}

config_format detect(std::string_view text, std::string_view name) {
  if (ends_with(name, ".json"))
    return config_format::json;
  if (ends_with(name, ".toml"))
    return config_format::toml;
  // A TOML document cannot start with '{' (no top-level inline table).
  size_t i = 0;
  if (text.substr(0, 3) == "\xEF\xBB\xBF")
    i = 3;
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i])))
    ++i;
  return i < text.size() && text[i] == '{' ? config_format::json
                                           : config_format::toml;
}

std::string read_text_file(const std::string& path) {
  namespace fs = std::filesystem;
  if (path.empty())
    throw config_error("config file path is empty");
  std::error_code ec;
  auto st = fs::status(path, ec);
  if (st.type() == fs::file_type::not_found)
    throw config_error(path + ": config file not found");
  if (st.type() == fs::file_type::directory)
    throw config_error(path + ": is a directory, not a config file");
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw config_error(path
                       + ": cannot open config file: " + std::strerror(errno));
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad())
    throw config_error(path + ": cannot read config file");
  return out.str();
}

} // namespace

void merge_config_string(config& cfg, std::string_view text,
                         std::string_view name, config_format format) {
  std::string file{name};
  if (format == config_format::automatic)
    format = detect(text, name);
  toml::table doc;
  if (format == config_format::json) {
    doc = config_detail::parse_json(text, file);
  } else {
    try {
      doc = toml::parse(text, file);
    } catch (const toml::parse_error& e) {
      auto& b = e.source().begin;
      throw config_error(file + ":" + std::to_string(b.line) + ":"
                         + std::to_string(b.column) + ": "
                         + std::string{e.description()});
    }
  }
  // Work on a copy so that a bad file leaves `cfg` untouched.
  config next = cfg;
  config_detail::reader r{file};
  config_detail::read_document(r, doc, next);
  for (auto& w : r.warnings())
    next.warnings.push_back(std::move(w));
  validate(next);
  next.sources.push_back(file);
  cfg = std::move(next);
}

void merge_config_file(config& cfg, const std::string& path) {
  auto text = read_text_file(path);
  merge_config_string(cfg, text, path, config_format::automatic);
}

config load_config(const std::string& path) {
  auto cfg = default_config();
  merge_config_file(cfg, path);
  return cfg;
}

config load_config_from_string(std::string_view text, std::string_view name,
                               config_format format) {
  auto cfg = default_config();
  merge_config_string(cfg, text, name, format);
  return cfg;
}

std::string normalize_log_level(std::string_view level,
                                std::string_view source) {
  std::string up{level};
  for (auto& c : up)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (up == "DEBUG" || up == "INFO" || up == "WARNING" || up == "ERROR")
    return up;
  throw config_error(std::string{source} + ": unknown log level '"
                     + std::string{level}
                     + "' (expected DEBUG, INFO, WARNING or ERROR)");
}

env_lookup process_environment() {
  return [](const char* name) -> std::optional<std::string> {
    if (auto v = std::getenv(name))
      return std::string{v};
    return std::nullopt;
  };
}

namespace {

std::optional<std::string> env_value(const env_lookup& env, const char* name) {
  auto v = env(name);
  if (v && v->empty())
    return std::nullopt;
  return v;
}

} // namespace

void apply_environment(config& cfg, const env_lookup& env) {
  if (auto v = env_value(env, "LB_LOG_LEVEL"))
    cfg.log_level = normalize_log_level(*v, "LB_LOG_LEVEL");
  if (auto v = env_value(env, "LB_MAX_WORKERS")) {
    errno = 0;
    char* end = nullptr;
    long long n = std::strtoll(v->c_str(), &end, 10);
    if (end == v->c_str() || *end != '\0' || errno == ERANGE || n < 1
        || n > std::numeric_limits<int>::max())
      throw config_error("LB_MAX_WORKERS: expected a positive integer, got '"
                         + *v + "'");
    cfg.max_workers = static_cast<int>(n);
  }
  if (auto v = env_value(env, "LB_DEFAULT_DURATION")) {
    errno = 0;
    char* end = nullptr;
    double d = std::strtod(v->c_str(), &end);
    if (end == v->c_str() || *end != '\0' || errno == ERANGE
        || !std::isfinite(d) || !(d > 0))
      throw config_error(
        "LB_DEFAULT_DURATION: expected a positive number of seconds, got '" + *v
        + "'");
    cfg.default_duration = d;
  }
}

std::string config_path(const std::string& flag, const env_lookup& env) {
  if (!flag.empty())
    return flag;
  return env_value(env, "LB_CONFIG_PATH").value_or("");
}

std::string shipped_scenarios_path(const env_lookup& env) {
  namespace fs = std::filesystem;
  if (auto v = env_value(env, "ALB_SCENARIOS_PATH"))
    return *v;
  std::vector<fs::path> candidates;
  std::error_code ec;
  auto exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto dir = exe.parent_path();
    // Installed layout first, then a build tree inside the source tree
    // (build-x/bin/alb or build-x/tests/<suite>).
    candidates.push_back(dir / "../share/alb/scenarios.toml");
    candidates.push_back(dir / "../configs/scenarios.toml");
    candidates.push_back(dir / "../../configs/scenarios.toml");
  }
#ifdef ALB_SCENARIOS_FILE
  candidates.emplace_back(ALB_SCENARIOS_FILE);
#endif
  for (auto& c : candidates)
    if (fs::is_regular_file(c, ec))
      return fs::weakly_canonical(c, ec).string();
  return {};
}

void merge_shipped_scenarios(config& cfg, const env_lookup& env) {
  auto path = shipped_scenarios_path(env);
  if (path.empty())
    throw config_error("cannot find the shipped scenario file scenarios.toml "
                       "(set ALB_SCENARIOS_PATH to its location)");
  merge_config_file(cfg, path);
}

config load_effective_config(const std::string& flag, const env_lookup& env) {
  auto cfg = default_config();
  merge_shipped_scenarios(cfg, env);
  auto path = config_path(flag, env);
  if (!path.empty()) {
    try {
      merge_config_file(cfg, path);
    } catch (const config_error& e) {
      if (flag.empty())
        throw config_error(std::string{e.what()} + " (from LB_CONFIG_PATH)");
      throw;
    }
  }
  apply_environment(cfg, env);
  return cfg;
}

} // namespace alb
