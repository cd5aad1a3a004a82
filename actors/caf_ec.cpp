#include "actors/caf_ec.hpp"

#include <caf/message.hpp>

namespace alb {

std::string ec_detail(const caf::error& e) {
  auto& ctx = e.context();
  for (size_t i = ctx.size(); i > 0; --i)
    if (ctx.match_element<std::string>(i - 1))
      return ctx.get_as<std::string>(i - 1);
  return {};
}

std::string render_ec(uint8_t code, const std::string& ctx) {
  std::string out = "alb: ";
  auto x = ec_from_code(code);
  out += x ? to_string(*x) : "unknown code " + std::to_string(code);
  if (!ctx.empty()) {
    out += " (";
    out += ctx;
    out += ')';
  }
  return out;
}

void add_alb_errors(caf::actor_system_config& cfg) {
  // The 3-argument overload: CAF 0.17.6's typed add_error_category<T> does
  // not compile (TOOLCHAIN.md).
  cfg.add_error_category(
    ec_category, [](uint8_t code, caf::atom_value, const caf::message& ctx) {
      std::string detail;
      for (size_t i = ctx.size(); i > 0 && detail.empty(); --i)
        if (ctx.match_element<std::string>(i - 1))
          detail = ctx.get_as<std::string>(i - 1);
      return render_ec(code, detail);
    });
}

} // namespace alb
