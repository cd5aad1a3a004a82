#pragma once

// The HTTP endpoint serving /metrics for a `registry`. It belongs to the
// process (not to an actor) and serves until destroyed.

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

namespace prometheus {
class Collectable;
} // namespace prometheus

namespace alb::metrics {

class registry;

/// Why a metrics server could not start; `what()` is one line naming the
/// address and port, fit to print as is.
class server_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// Returns whether `address` is a loopback address ("localhost", 127.0.0.0/8,
/// "::1"). Host names other than "localhost" count as non-local.
bool is_loopback(const std::string& address);

/// Produces the body of `/api/status` (JSON); throws std::exception when
/// the status cannot be had (the client then gets 503 with the reason).
using status_source = std::function<std::string()>;

/// Serves `GET /metrics` over HTTP; with a status source also the status
/// page (`/`, `/status.js`) and `/api/status`. Any other path is 404.
///
/// Slow or stuck clients cannot starve scrapes: `server_threads` requests are
/// served at once, and a client that has not sent its whole request within
/// `request_timeout_ms` is dropped.
class server {
public:
  /// HTTP worker threads.
  static constexpr int server_threads = 8;

  /// Milliseconds a client has to send its request (and to read the answer).
  static constexpr int request_timeout_ms = 2000;

  /// Starts listening on `bind_address`:`port` (port 0 picks a free one).
  /// Throws `server_error` if the address is not loopback and `allow_remote`
  /// is false, or if the port cannot be bound (e.g. "metrics port 9464 on
  /// 127.0.0.1 is in use"). With `allow_remote`, a non-local address is
  /// accepted and a line saying so goes to std::clog.
  server(registry& reg, std::string bind_address, std::uint16_t port,
         bool allow_remote = false);

  /// The same for any collectable (e.g. a node's own families, which are
  /// not a `registry`).
  server(std::shared_ptr<prometheus::Collectable> what,
         std::string bind_address, std::uint16_t port,
         bool allow_remote = false);

  ~server();

  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// The port actually bound (the chosen one when constructed with 0).
  std::uint16_t port() const;

  /// The address bound to.
  const std::string& bind_address() const;

  /// The scrape URL, e.g. "http://127.0.0.1:9464/metrics".
  std::string url() const;

  /// Serves the status page and `/api/status` from `source` (empty = stop
  /// serving them: 404). Thread-safe; requests in flight finish with the
  /// source they started with.
  void set_status_source(status_source source);

  /// The status page's URL, e.g. "http://127.0.0.1:9464/".
  std::string page_url() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace alb::metrics
