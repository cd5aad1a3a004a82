#include "report/visualize/results.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

namespace alb::report::viz {

namespace {

/// Python's json module writes NaN and Infinity for undefined metrics (the
/// original's files have them); read those tokens as null.
std::string nonfinite_to_null(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < text.size())
        out += text[++i];
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
      out += c;
      continue;
    }
    auto at = [&](std::string_view tok) {
      return text.compare(i, tok.size(), tok) == 0;
    };
    if (at("NaN")) {
      out += "null";
      i += 2;
    } else if (at("-Infinity")) {
      out += "null";
      i += 8;
    } else if (at("Infinity")) {
      out += "null";
      i += 7;
    } else {
      out += c;
    }
  }
  return out;
}

/// The first of `keys` that `obj` holds as a number.
std::optional<double> number_at(const json& obj,
                                std::initializer_list<const char*> keys) {
  if (!obj.is_object())
    return std::nullopt;
  for (auto key : keys)
    if (auto it = obj.find(key); it != obj.end())
      if (auto v = as_number(*it))
        return v;
  return std::nullopt;
}

metric_map numeric_fields(const json& obj) {
  metric_map out;
  for (auto it = obj.begin(); it != obj.end(); ++it)
    if (auto v = as_number(it.value()); v && !it.value().is_string())
      out.emplace(it.key(), *v);
  return out;
}

series parse_series(const json& j, const std::string& where,
                    const std::string& prefix) {
  series out;
  if (j.is_null())
    return out;
  if (!j.is_array())
    fail(visualize_ec::wrong_shape,
         prefix + "\"" + where + "\" is " + json_type(j)
           + ", expected a list of [seconds, value] pairs");
  for (const auto& e : j) {
    std::optional<double> t, v;
    if (e.is_array() && e.size() >= 2) {
      t = as_number(e[0]);
      v = as_number(e[1]);
    } else if (e.is_object()) {
      t = number_at(e, {"t", "time", "timestamp", "elapsed"});
      v = number_at(e, {"v", "value", "y"});
    }
    if (t && v)
      out.emplace_back(*t, *v);
  }
  std::stable_sort(out.begin(), out.end(), [](const point& a, const point& b) {
    return a.first < b.first;
  });
  return out;
}

} // namespace

json load_json(const fs::path& path) {
  const std::string name = path.string();
  std::error_code ec;
  auto st = fs::status(path, ec);
  if (ec || !fs::exists(st))
    fail(visualize_ec::input_unreadable, name + ": no such file");
  if (fs::is_directory(st))
    fail(visualize_ec::input_unreadable,
         name + ": is a directory, not a result file");
  std::ifstream in(path, std::ios::binary);
  if (!in)
    fail(visualize_ec::input_unreadable,
         name + ": cannot read: " + std::strerror(errno));
  std::string text{std::istreambuf_iterator<char>(in),
                   std::istreambuf_iterator<char>()};
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    auto repaired = nonfinite_to_null(text);
    if (repaired != text) {
      try {
        return json::parse(repaired);
      } catch (const json::parse_error&) {
        // report the original error below
      }
    }
    std::string msg = e.what();
    if (auto pos = msg.find("] ");
        msg.rfind("[json.exception", 0) == 0 && pos != std::string::npos)
      msg = msg.substr(pos + 2);
    fail(visualize_ec::malformed_json, name + ": malformed JSON: " + msg);
  }
}

std::optional<double> as_number(const json& j) {
  double v;
  if (j.is_number()) {
    v = j.get<double>();
  } else if (j.is_string()) {
    const auto& s = j.get_ref<const std::string&>();
    char* end = nullptr;
    v = std::strtod(s.c_str(), &end);
    if (s.empty() || end != s.c_str() + s.size())
      return std::nullopt;
  } else {
    return std::nullopt;
  }
  if (!std::isfinite(v))
    return std::nullopt;
  return v;
}

std::optional<double> metric(const metric_map& m, const char* key) {
  if (auto it = m.find(key); it != m.end())
    return it->second;
  return std::nullopt;
}

const json* find_any(const json& obj, std::initializer_list<const char*> keys) {
  if (!obj.is_object())
    return nullptr;
  for (auto key : keys)
    if (auto it = obj.find(key); it != obj.end())
      return &*it;
  return nullptr;
}

run_data parse_run(const json& j, result_kind kind, const std::string& file) {
  const std::string prefix = file + ": not a " + to_string(kind) + " result: ";
  if (!j.is_object())
    fail(visualize_ec::wrong_shape,
         prefix + "expected a JSON object, found " + json_type(j));
  run_data r;
  auto m = j.find("metrics");
  if (m == j.end())
    fail(visualize_ec::wrong_shape, prefix + "missing \"metrics\"");
  if (!m->is_object())
    fail(visualize_ec::wrong_shape,
         prefix + "\"metrics\" is " + json_type(*m) + ", expected an object");
  r.metrics = numeric_fields(*m);
  if (auto c = j.find("configuration"); c != j.end() && c->is_object())
    r.configuration = *c;
  const json empty = json::object();
  const json* ts = &empty;
  if (auto it = j.find("time_series"); it != j.end() && !it->is_null()) {
    if (!it->is_object())
      fail(visualize_ec::wrong_shape, prefix + "\"time_series\" is "
                                        + json_type(*it)
                                        + ", expected an object");
    ts = &*it;
  }
  auto take = [&](std::initializer_list<const char*> keys, bool* present) {
    for (auto key : keys) {
      if (auto it = ts->find(key); it != ts->end()) {
        if (present)
          *present = true;
        return parse_series(*it, std::string("time_series.") + key, prefix);
      }
    }
    return series{};
  };
  r.throughput = take({"throughput"}, nullptr);
  r.latency = take({"latency"}, nullptr);
  r.queue_depth
    = take({"queue_depth", "queue_length", "pending"}, &r.has_queue_depth);
  r.workers
    = take({"workers", "worker_count", "active_workers"}, &r.has_workers);
  const json* spikes = find_any(j, {"spikes"});
  if (!spikes)
    spikes = find_any(*m, {"spikes"});
  if (spikes && !spikes->is_null()) {
    if (!spikes->is_array())
      fail(visualize_ec::wrong_shape, prefix + "\"spikes\" is "
                                        + json_type(*spikes)
                                        + ", expected a list");
    r.spikes_given = true;
    for (std::size_t i = 0; i < spikes->size(); ++i) {
      const auto& s = (*spikes)[i];
      auto where = "\"spikes[" + std::to_string(i) + "]\"";
      auto start = number_at(s, {"start", "start_time", "begin"});
      auto end = number_at(s, {"end", "end_time", "stop"});
      if (!start)
        fail(visualize_ec::wrong_shape,
             prefix + where + " has no numeric \"start\"");
      if (!end)
        fail(visualize_ec::wrong_shape,
             prefix + where + " has no numeric \"end\"");
      spike_info info;
      info.when = {std::min(*start, *end), std::max(*start, *end)};
      info.tests = number_at(s, {"tests", "test_count", "size"});
      r.spikes.push_back(info);
    }
  }
  for (const json* src : {static_cast<const json*>(&*m), &j,
                          static_cast<const json*>(&r.configuration)}) {
    if (!r.initial_workers)
      r.initial_workers = number_at(*src, {"initial_workers"});
    if (!r.final_workers)
      r.final_workers
        = number_at(*src, {"final_workers", "final_worker_count"});
  }
  // Absolute (epoch) timestamps: shift everything to seconds since start.
  double t0 = std::numeric_limits<double>::infinity();
  for (auto* s : {&r.throughput, &r.latency, &r.queue_depth, &r.workers})
    if (!s->empty())
      t0 = std::min(t0, s->front().first);
  if (std::isfinite(t0) && t0 > 1e8) {
    for (auto* s : {&r.throughput, &r.latency, &r.queue_depth, &r.workers})
      for (auto& p : *s)
        p.first -= t0;
    for (auto& s : r.spikes)
      if (s.when.start > 1e8) {
        s.when.start -= t0;
        s.when.end -= t0;
      }
  }
  if (kind == result_kind::spike && !r.spikes_given)
    for (auto& w : detect_spikes(r.throughput))
      r.spikes.push_back({w, std::nullopt});
  return r;
}

bench_data parse_bench(const json& j, const std::string& file) {
  const std::string prefix = file + ": not a benchmark result: ";
  bench_data b;
  const json* results = nullptr;
  if (j.is_array()) {
    results = &j;
  } else if (j.is_object()) {
    auto it = j.find("results");
    if (it == j.end())
      fail(visualize_ec::wrong_shape, prefix + "missing \"results\"");
    if (!it->is_array())
      fail(visualize_ec::wrong_shape,
           prefix + "\"results\" is " + json_type(*it) + ", expected a list");
    results = &*it;
    if (auto c = j.find("configuration"); c != j.end() && c->is_object())
      b.configuration = *c;
  } else {
    fail(visualize_ec::wrong_shape,
         prefix + "expected an object with \"results\" or a list, found "
           + json_type(j));
  }
  const std::string list = j.is_array() ? "entry" : "results";
  for (std::size_t i = 0; i < results->size(); ++i) {
    const auto& e = (*results)[i];
    auto where = "\"" + list + "[" + std::to_string(i) + "]\"";
    if (!e.is_object())
      fail(visualize_ec::wrong_shape,
           prefix + where + " is " + json_type(e) + ", expected an object");
    const json empty = json::object();
    const json& cfg = e.contains("configuration") ? e["configuration"] : empty;
    bench_entry be;
    auto field = [&](const char* key) {
      auto v = number_at(e, {key});
      if (!v)
        v = number_at(cfg, {key});
      if (!v)
        fail(visualize_ec::wrong_shape,
             prefix + where + " has no numeric \"" + key + "\"");
      return *v;
    };
    be.workers = field("workers");
    be.tests = field("tests");
    const json* strategy = find_any(e, {"strategy", "scheduler"});
    if (!strategy)
      strategy = find_any(cfg, {"strategy", "scheduler"});
    if (!strategy || !strategy->is_string())
      fail(visualize_ec::wrong_shape, prefix + where + " has no \"strategy\"");
    be.strategy = printable(strategy->get<std::string>());
    if (auto mt = e.find("metrics"); mt != e.end()) {
      if (!mt->is_object())
        fail(visualize_ec::wrong_shape, prefix + where + ".metrics is "
                                          + json_type(*mt)
                                          + ", expected an object");
      be.metrics = numeric_fields(*mt);
    } else {
      be.metrics = numeric_fields(e);
    }
    b.entries.push_back(std::move(be));
  }
  return b;
}

result_kind detect_kind(const json& j, const std::string& file) {
  if (j.is_array())
    return result_kind::benchmark;
  if (j.is_object()) {
    if (auto t = j.find("type"); t != j.end() && t->is_string())
      if (auto k = parse_result_kind(t->get<std::string>()))
        return *k;
    if (j.contains("results"))
      return result_kind::benchmark;
    if (j.contains("spikes"))
      return result_kind::spike;
    if (j.contains("metrics") || j.contains("time_series")
        || j.contains("configuration"))
      return result_kind::stress;
  }
  fail(visualize_ec::wrong_shape,
       file
         + ": cannot tell the result type: expected \"results\" "
           "(benchmark) or \"metrics\" and \"time_series\" (stress, "
           "spike); pass --type stress|benchmark|spike");
}

} // namespace alb::report::viz
