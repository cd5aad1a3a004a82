#pragma once

// alb::ec (runtime/ec.hpp) as CAF errors: CAF 0.17.6's CAF_ERROR_CODE_ENUM
// makes `caf::make_error(alb::ec::wrong_token, "detail")` an error of
// category "alb" whose code is the enum's number, so it crosses actors and
// the wire like CAF's own `sec` codes; `add_alb_errors` lets an actor
// system render them ("alb: wrong_token (detail)"). Include it only where
// errors are made or read, not in widely included headers.

#include <optional>
#include <string>

#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/error.hpp>

#include "runtime/ec.hpp"

CAF_ERROR_CODE_ENUM(alb::ec, "alb")

namespace alb {

/// The error category of alb's codes.
constexpr caf::atom_value ec_category = caf::atom("alb");

/// The alb code of `e`, nullopt when `e` is no error or one of another
/// category (CAF's own, a timeout).
inline std::optional<ec> ec_of(const caf::error& e) {
  if (!e || e.category() != ec_category)
    return std::nullopt;
  return ec_from_code(e.code());
}

/// Whether `e` carries the alb code `x`.
inline bool has_ec(const caf::error& e, ec x) {
  return ec_of(e) == x;
}

/// The detail line `e` carries (its context's last string; "" = none).
std::string ec_detail(const caf::error& e);

/// "alb: wrong_token (detail)": how an actor system with `add_alb_errors`
/// renders an error of code `code` and context `ctx`.
std::string render_ec(uint8_t code, const std::string& ctx);

/// Registers the renderer of alb's codes with `cfg`.
void add_alb_errors(caf::actor_system_config& cfg);

} // namespace alb
