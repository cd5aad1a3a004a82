// The JSON bridge: the original's JSON configuration format is converted to
// the TOML tree the reader reads, so both formats share every check.

#include "runtime/config/reader.hpp"

#include <nlohmann/json.hpp>

namespace alb::config_detail {

namespace {

// Deeper nesting than any valid config has; the limit keeps the recursive
// conversion below from exhausting the stack on hostile input.
constexpr int max_json_depth = 64;

void json_into_table(toml::table& t, const std::string& key,
                     const nlohmann::json& j, const std::string& path,
                     const std::string& file, int depth);
void json_into_array(toml::array& a, const nlohmann::json& j,
                     const std::string& path, const std::string& file,
                     int depth);

/// Converts `j` and hands the result to `put`.
template<class Put>
void convert_json(const nlohmann::json& j, const std::string& path,
                  const std::string& file, int depth, Put put) {
  auto error = [&](const std::string& what) {
    return config_error(file + ": " + (path.empty() ? "top level" : path) + ": "
                        + what);
  };
  if (depth > max_json_depth)
    throw error("nested more than " + std::to_string(max_json_depth)
                + " levels deep");
  using vt = nlohmann::json::value_t;
  switch (j.type()) {
    case vt::object: {
      toml::table t;
      for (auto& [k, v] : j.items())
        json_into_table(t, k, v, child(path, k), file, depth + 1);
      put(std::move(t));
      break;
    }
    case vt::array: {
      toml::array a;
      for (size_t i = 0; i < j.size(); ++i)
        json_into_array(a, j[i], path + "[" + std::to_string(i) + "]", file,
                        depth + 1);
      put(std::move(a));
      break;
    }
    case vt::string:
      put(j.get<std::string>());
      break;
    case vt::boolean:
      put(j.get<bool>());
      break;
    case vt::number_integer:
      put(j.get<int64_t>());
      break;
    case vt::number_unsigned: {
      auto u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        throw error("integer " + std::to_string(u) + " is too large");
      put(static_cast<int64_t>(u));
      break;
    }
    case vt::number_float:
      put(j.get<double>());
      break;
    case vt::null:
      throw error("null is not a valid value");
    default:
      throw error("unsupported JSON value");
  }
}

void json_into_table(toml::table& t, const std::string& key,
                     const nlohmann::json& j, const std::string& path,
                     const std::string& file, int depth) {
  convert_json(j, path, file, depth,
               [&](auto&& x) { t.insert_or_assign(key, std::move(x)); });
}

void json_into_array(toml::array& a, const nlohmann::json& j,
                     const std::string& path, const std::string& file,
                     int depth) {
  convert_json(j, path, file, depth,
               [&](auto&& x) { a.push_back(std::move(x)); });
}

std::string line_col_at(std::string_view text, size_t offset) {
  offset = std::min(offset, text.size());
  size_t line = 1, col = 1;
  for (size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return std::to_string(line) + ":" + std::to_string(col);
}

} // namespace

toml::table parse_json(std::string_view text, const std::string& file) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte counts from 1 and points at the character that broke parsing.
    size_t offset = e.byte > 0 ? e.byte - 1 : 0;
    std::string detail = e.what();
    // Drop nlohmann's "[json.exception...] parse error at line L, column C: "
    // prefix: the position is given in our own format.
    if (auto p = detail.find("column "); p != std::string::npos)
      if (auto q = detail.find(": ", p); q != std::string::npos)
        detail = detail.substr(q + 2);
    throw config_error(file + ":" + line_col_at(text, offset)
                       + ": JSON syntax error at byte " + std::to_string(e.byte)
                       + ": " + detail);
  } catch (const nlohmann::json::exception& e) {
    throw config_error(file + ": invalid JSON: " + e.what());
  }
  if (!j.is_object())
    throw config_error(file + ": top level: expected a JSON object, got "
                       + std::string{j.type_name()});
  toml::table t;
  convert_json(j, "", file, 0, [&](auto&& x) {
    if constexpr (std::is_same_v<std::decay_t<decltype(x)>, toml::table>)
      t = std::move(x);
  });
  return t;
}

} // namespace alb::config_detail
