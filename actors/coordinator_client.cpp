#include "actors/coordinator_client.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fcntl.h>
#include <fstream>
#include <mutex>
#include <random>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/basp_guard.hpp"
#include <nlohmann/json.hpp>

#include "actors/caf_ec.hpp"
#include "actors/cluster_net.hpp"
#include "actors/node.hpp"
#include "actors/system.hpp"

namespace alb {

const char* to_string(client_errc x) {
  switch (x) {
    case client_errc::bad_input:
      return "bad_input";
    case client_errc::unreachable:
      return "unreachable";
    case client_errc::refused:
      return "refused";
    case client_errc::timeout:
      return "timeout";
    case client_errc::disconnected:
      return "disconnected";
    case client_errc::not_connected:
      return "not_connected";
    case client_errc::coordinator_failed:
      return "coordinator_failed";
  }
  return "unknown";
}

client_errc client_errc_of(ec x) {
  switch (x) {
    case ec::no_token:
    case ec::wrong_token:
    case ec::missing_handle:
    case ec::bad_worker:
    case ec::not_accepted:
    case ec::not_your_session:
      return client_errc::refused;
    case ec::not_owner:
    case ec::unknown_run:
    case ec::no_journal:
    case ec::unknown_test:
      return client_errc::bad_input;
    case ec::journal_failed:
    case ec::status_failed:
      return client_errc::coordinator_failed;
    case ec::node_dropped:
    case ec::none:
      break;
  }
  // A session that is gone (or a code this client does not know): the
  // connection is as good as lost.
  return client_errc::disconnected;
}

std::string client_message(ec x, const std::string& detail) {
  std::string out = describe(x);
  if (!detail.empty())
    out += " (" + detail + ")";
  return out;
}

int exit_status(client_errc) {
  return 2;
}

coordinator_client_error::coordinator_client_error(client_errc code,
                                                   const std::string& what,
                                                   ec reason)
  : std::runtime_error(what), code_(code), reason_(reason) {
  // nop
}

client_errc coordinator_client_error::code() const noexcept {
  return code_;
}

ec coordinator_client_error::reason() const noexcept {
  return reason_;
}

std::pair<std::string, uint16_t> parse_coordinator_url(const std::string& s) {
  auto scheme = s.find("://");
  if (scheme == std::string::npos)
    return parse_endpoint(s);
  if (s.compare(0, scheme, "alb") != 0)
    throw cluster_error{"unsupported scheme in '" + s
                        + "' (expected HOST:PORT or alb://HOST:PORT)"};
  auto rest = s.substr(scheme + 3);
  if (!rest.empty() && rest.back() == '/')
    rest.pop_back();
  if (rest.find('/') != std::string::npos)
    throw cluster_error{"bad address '" + s
                        + "' (expected HOST:PORT or alb://HOST:PORT)"};
  return parse_endpoint(rest);
}

std::string make_run_id() {
  auto t = std::time(nullptr);
  std::tm tm;
  ::localtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
  std::random_device rd;
  char suffix[8];
  std::snprintf(suffix, sizeof(suffix), "-%04x", rd() & 0xffff);
  return std::string{stamp} + suffix;
}

std::string default_client_key_path() {
  if (auto* p = std::getenv("ALB_CLIENT_KEY_FILE"); p && *p)
    return p;
  if (auto* x = std::getenv("XDG_CONFIG_HOME"); x && *x)
    return std::string{x} + "/alb/client.key";
  if (auto* h = std::getenv("HOME"); h && *h)
    return std::string{h} + "/.config/alb/client.key";
  throw cluster_error{"no place for the client key: set HOME or "
                      "ALB_CLIENT_KEY_FILE, or pass --client-key FILE"};
}

std::string read_client_key(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    // Made once, readable by its user only; created under a temporary name
    // and linked into place so two first runs at once agree on one key.
    auto slash = path.rfind('/');
    if (slash != std::string::npos && slash > 0) {
      auto dir = path.substr(0, slash);
      // The parent of ~/.config/alb may be missing too.
      auto up = dir.rfind('/');
      if (up != std::string::npos && up > 0)
        ::mkdir(dir.substr(0, up).c_str(), 0700);
      ::mkdir(dir.c_str(), 0700);
    }
    std::random_device rd;
    char key[33];
    for (int i = 0; i < 4; ++i)
      std::snprintf(key + 8 * i, 9, "%08x", static_cast<unsigned>(rd()));
    auto tmp = path + ".tmp." + std::to_string(::getpid());
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
      throw cluster_error{"cannot create client key file '" + path + "'"};
    std::string line = std::string{key} + "\n";
    bool ok = ::write(fd, line.data(), line.size())
              == static_cast<ssize_t>(line.size());
    ok = ::fsync(fd) == 0 && ok;
    ::close(fd);
    if (!ok || (::link(tmp.c_str(), path.c_str()) != 0 && errno != EEXIST)) {
      ::unlink(tmp.c_str());
      throw cluster_error{"cannot create client key file '" + path + "'"};
    }
    ::unlink(tmp.c_str());
  }
  std::string warning;
  auto key = read_token_file(path, &warning);
  if (!warning.empty())
    throw cluster_error{"client key file '" + path
                        + "' is readable by other users (chmod 600 it)"};
  return key;
}

namespace {

using clock_type = std::chrono::steady_clock;

clock_type::duration seconds(double s) {
  return std::chrono::duration_cast<clock_type::duration>(
    std::chrono::duration<double>(std::max(0.0, s)));
}

/// What the receiving actor and the API threads share; outlives both.
struct shared_state {
  std::mutex mtx;
  std::condition_variable cv;
  /// Outcomes the coordinator owes us (tests it took on, or may have).
  size_t expected = 0;
  /// Outcomes that arrived.
  size_t received = 0;
  /// Outcomes not yet returned by wait().
  std::vector<cluster_outcome> pending;
  outcome_callback callback;
  bool lost = false;

  void deliver(outcome_batch& b) {
    outcome_callback f;
    {
      std::lock_guard<std::mutex> g{mtx};
      f = callback;
      if (!f) {
        received += b.items.size();
        for (auto& o : b.items)
          pending.push_back(std::move(o));
      }
    }
    if (f) {
      // Outside the lock, as the callback may take its time; counted only
      // after it ran: a wait() that saw them counted first would return
      // while the last outcomes were still on their way to the callback
      // (`alb submit` then wrote its results without them).
      for (auto& o : b.items)
        f(o);
      std::lock_guard<std::mutex> g{mtx};
      received += b.items.size();
    }
    cv.notify_all();
  }

  void lose() {
    {
      std::lock_guard<std::mutex> g{mtx};
      lost = true;
    }
    cv.notify_all();
  }

  size_t open_locked() const {
    return expected > received ? expected - received : 0;
  }
};

// One heartbeat to the client's session; the reply says when the next is
// due. A session that is gone (expired after --client-timeout without
// heartbeats) ends the wait: no outcome can arrive over it any more.
void client_heartbeat(caf::event_based_actor* self,
                      std::shared_ptr<shared_state> st,
                      client_session_actor session) {
  self->request(session, std::chrono::seconds(10), heartbeat_atom::value)
    .then(
      [self, session](double next) {
        if (next > 0)
          self->delayed_send(self,
                             std::chrono::duration_cast<caf::timespan>(
                               std::chrono::duration<double>(next)),
                             heartbeat_atom::value, session);
      },
      [self, st, session](caf::error& e) {
        // No answer in time: try again; the session gone: the wait is over.
        if (e == caf::sec::request_timeout)
          client_heartbeat(self, st, session);
        else
          st->lose();
      });
}

caf::behavior receiver(caf::event_based_actor* self,
                       std::shared_ptr<shared_state> st,
                       coordinator_actor coord) {
  // The connection (or the coordinator, or the session) going away ends
  // the wait for outcomes that can no longer arrive.
  self->monitor(coord);
  self->set_down_handler([st](caf::down_msg&) { st->lose(); });
  return {
    [st](outcome_batch& b) { st->deliver(b); },
    // From connect() (the session opened), then its own timer.
    [self, st](heartbeat_atom, client_session_actor& s) {
      if (self->current_sender() != self->ctrl()) {
        // The first one, from connect(): watch the session too.
        self->monitor(s);
      }
      client_heartbeat(self, st, s);
    },
    // close(): ending with the normal exit reason is how a client leaves
    // cleanly (the coordinator then retires the outcomes it received).
    [self](leave_atom) { self->quit(); },
  };
}

// The coordinator's own words when it sent some ("submission refused:
// wrong join token"), else CAF's rendering of the error.
// Bytes `x` takes serialized (what CAF puts in a frame's payload, less its
// small envelope).
template<class T>
size_t serialized_size(caf::actor_system& sys, T& x) {
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  if (sink(x))
    return 0;
  return buf.size();
}

std::string megabytes(size_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f MB",
                static_cast<double>(bytes) / (1 << 20));
  return buf;
}

// Why submission `s` cannot be sent in one message ("" = it can): the
// coordinator accepts at most `limit` bytes (its --max-submission, which
// it told this client when the session opened); its guard drops a larger
// frame, so the request would only time out.
std::string oversized(caf::actor_system& sys, cluster_submission& s,
                      size_t limit) {
  auto size = serialized_size(sys, s);
  if (size <= limit)
    return {};
  // Name the largest test: one huge environment or command is the usual
  // cause, and a single test over the limit cannot be split off.
  size_t largest = 0;
  std::string largest_id;
  for (auto& t : s.tests) {
    auto k = serialized_size(sys, t);
    if (k > largest) {
      largest = k;
      largest_id = t.req.test_id;
    }
  }
  auto limit_text = " serialized, over the coordinator's limit of "
                    + megabytes(limit)
                    + " per submission (its --max-submission)";
  if (largest > limit)
    return "test '" + largest_id + "' alone is " + megabytes(largest)
           + limit_text + " (make its command and environment smaller)";
  return "submission of " + std::to_string(s.tests.size()) + " tests is "
         + megabytes(size) + limit_text + "; submit fewer tests at a time";
}

std::string error_text(caf::actor_system& sys, const caf::error& e) {
  if (auto code = ec_of(e))
    return client_message(*code, ec_detail(e));
  auto& ctx = e.context();
  for (size_t i = ctx.size(); i > 0; --i)
    if (ctx.match_element<std::string>(i - 1))
      return ctx.get_as<std::string>(i - 1);
  return sys.render(e);
}

// The client error of a request `what` ("cancel") the coordinator failed:
// no answer within the timeout, its code (mapped to a kind), or else a
// lost connection.
coordinator_client_error request_error(caf::actor_system& sys,
                                       const std::string& what,
                                       const caf::error& e) {
  if (e == caf::sec::request_timeout)
    return {client_errc::timeout, what + ": " + error_text(sys, e)};
  if (auto code = ec_of(e))
    return {client_errc_of(*code), what + ": " + error_text(sys, e), *code};
  return {client_errc::disconnected, what + ": " + error_text(sys, e)};
}

} // namespace

struct coordinator_client::impl {
  coordinator_client_options opts;
  std::string host;
  uint16_t port = 0;
  std::vector<std::string> warnings;
  // Serialises connect, submit, stats and close.
  mutable std::mutex api_mtx;
  std::shared_ptr<shared_state> st = std::make_shared<shared_state>();
  // Declared in this order so they are destroyed in reverse: the actor
  // system before its config, both before the TLS material CAF reads.
  std::unique_ptr<tls_material> tls;
  std::unique_ptr<caf::actor_system_config> cfg;
  std::unique_ptr<caf::actor_system> sys;
  coordinator_actor coord;
  caf::actor recv;
  /// The session the hello opened: everything after the hello goes here.
  client_session_actor session;
  /// Run id of the last submission.
  std::string run_id;
  /// Largest submission the coordinator accepts, bytes (it says so when
  /// the session opens).
  size_t max_submission = default_max_payload - submission_envelope;

  caf::timespan request_timeout() const {
    return std::chrono::duration_cast<caf::timespan>(
      seconds(opts.request_timeout > 0 ? opts.request_timeout : 1e6));
  }

  void shutdown() {
    if (recv)
      caf::anon_send_exit(recv, caf::exit_reason::user_shutdown);
    recv = nullptr;
    session = nullptr;
    coord = nullptr;
    sys.reset();
    cfg.reset();
    tls.reset();
  }

  // A request on the session answered with text (stats, status): a lost
  // connection or a timeout is one client error named after `what`.
  template<class... Ts>
  std::string ask_text(const char* what, Ts&&... xs) {
    std::lock_guard<std::mutex> api{api_mtx};
    require_connection();
    caf::scoped_actor self{*sys};
    std::string out;
    caf::error failure;
    self->request(session, request_timeout(), std::forward<Ts>(xs)...)
      .receive([&](std::string& s) { out = std::move(s); },
               [&](caf::error& e) { failure = std::move(e); });
    if (failure)
      throw request_error(*sys, what, failure);
    return out;
  }

  void require_connection() const {
    if (!sys)
      throw coordinator_client_error{client_errc::not_connected,
                                     "not connected to a coordinator"};
    std::lock_guard<std::mutex> g{st->mtx};
    if (st->lost)
      throw coordinator_client_error{client_errc::disconnected,
                                     "the connection to the coordinator at "
                                       + host + ":" + std::to_string(port)
                                       + " is gone"};
  }
};

coordinator_client::coordinator_client(coordinator_client_options opts)
  : impl_(new impl) {
  impl_->opts = std::move(opts);
}

coordinator_client::~coordinator_client() {
  close();
}

void coordinator_client::connect() {
  auto& d = *impl_;
  std::lock_guard<std::mutex> api{d.api_mtx};
  if (d.sys)
    return;
  try {
    std::tie(d.host, d.port) = parse_coordinator_url(d.opts.endpoint);
    if (d.opts.tls.enabled()) {
      d.tls = std::make_unique<tls_material>(d.opts.tls);
      d.warnings = d.tls->warnings();
    }
  } catch (const cluster_error& e) {
    d.tls.reset();
    throw coordinator_client_error{client_errc::bad_input, e.what()};
  }
  d.cfg = std::make_unique<caf::actor_system_config>();
  configure_system(*d.cfg, std::max(1, d.opts.threads), false);
  load_network(*d.cfg, d.tls.get());
  try {
    d.sys = std::make_unique<caf::actor_system>(*d.cfg);
  } catch (const std::exception& e) {
    d.shutdown();
    throw coordinator_client_error{client_errc::bad_input,
                                   std::string{"cannot start the network: "}
                                     + e.what()};
  }
  auto addr = d.host + ":" + std::to_string(d.port);
  auto deadline = clock_type::now() + seconds(d.opts.connect_timeout);
  for (;;) {
    // Each attempt may wait as long as the whole budget has left: a peer
    // that accepts but never completes the handshake is cut off by it.
    auto left = std::max(deadline - clock_type::now(),
                         clock_type::duration{std::chrono::milliseconds(500)});
    auto h = connect_coordinator(
      *d.sys, d.host, d.port, std::chrono::duration_cast<caf::timespan>(left));
    if (h) {
      d.coord = *h;
      break;
    }
    if (clock_type::now() >= deadline) {
      auto& err = h.error();
      auto why = error_text(*d.sys, err);
      if (err == caf::sec::disconnect_during_handshake
          || err == caf::sec::request_timeout)
        why += tls_mismatch_hint(d.tls != nullptr);
      d.shutdown();
      throw coordinator_client_error{client_errc::unreachable,
                                     "cannot reach coordinator at " + addr
                                       + ": " + why};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  {
    // Tests left open by an earlier connection get no outcome over this one.
    std::lock_guard<std::mutex> g{d.st->mtx};
    d.st->lost = false;
    d.st->expected = d.st->received;
  }
  d.recv = d.sys->spawn(receiver, d.st, d.coord);
  // The token opens a session; submissions, stats and cancels need it.
  caf::error failure;
  {
    caf::scoped_actor self{*d.sys};
    self
      ->request(d.coord, d.request_timeout(), hello_atom::value,
                client_hello{d.opts.token, d.recv, d.opts.owner_key})
      .receive([&](client_session_actor& s) { d.session = std::move(s); },
               [&](caf::error& e) { failure = std::move(e); });
  }
  if (!failure) {
    caf::anon_send(d.recv, heartbeat_atom::value, d.session);
    // The coordinator's size limit, so an oversized submission is refused
    // here with a reason instead of being dropped by its guard. No answer:
    // the limit of a coordinator that has not changed the default.
    caf::scoped_actor self{*d.sys};
    self->request(d.session, d.request_timeout(), limits_atom::value)
      .receive([&](uint64_t n) { d.max_submission = static_cast<size_t>(n); },
               [&](caf::error&) {});
  }
  if (failure) {
    auto e = request_error(*d.sys, "no session with the coordinator at " + addr,
                           failure);
    if (e.code() == client_errc::refused)
      e = {e.code(),
           "the coordinator at " + addr
             + " refused this client: " + error_text(*d.sys, failure),
           e.reason()};
    d.shutdown();
    throw e;
  }
}

bool coordinator_client::connected() const {
  auto& d = *impl_;
  std::lock_guard<std::mutex> api{d.api_mtx};
  if (!d.sys)
    return false;
  std::lock_guard<std::mutex> g{d.st->mtx};
  return !d.st->lost;
}

void coordinator_client::on_outcome(outcome_callback f) {
  std::lock_guard<std::mutex> g{impl_->st->mtx};
  impl_->st->callback = std::move(f);
}

size_t coordinator_client::submit(std::vector<cluster_test> tests) {
  return submit(std::move(tests), submission_info{});
}

std::string coordinator_client::run_id() const {
  std::lock_guard<std::mutex> api{impl_->api_mtx};
  return impl_->run_id;
}

size_t coordinator_client::submit(std::vector<cluster_test> tests,
                                  const submission_info& info) {
  auto& d = *impl_;
  std::lock_guard<std::mutex> api{d.api_mtx};
  d.require_connection();
  if (tests.empty())
    throw coordinator_client_error{client_errc::bad_input,
                                   "no tests to submit"};
  auto n = tests.size();
  cluster_submission s{std::move(tests), info.run_id, info.label, info.rerun};
  if (s.run_id.empty())
    s.run_id = make_run_id();
  d.run_id = s.run_id;
  // The coordinator's guard drops a connection that sends a frame larger
  // than it accepts, and the request would then only time out: say so
  // before sending anything.
  if (auto why = oversized(*d.sys, s, d.max_submission); !why.empty())
    throw coordinator_client_error{client_errc::bad_input, why};
  // Counted before sending: outcomes of rejected tests may arrive before
  // the reply does.
  {
    std::lock_guard<std::mutex> g{d.st->mtx};
    d.st->expected += n;
  }
  caf::scoped_actor self{*d.sys};
  uint64_t accepted = 0;
  caf::error failure;
  self
    ->request(d.session, d.request_timeout(), submit_atom::value, std::move(s))
    .receive([&](uint64_t k) { accepted = k; },
             [&](caf::error& e) { failure = std::move(e); });
  if (failure || accepted < n) {
    std::lock_guard<std::mutex> g{d.st->mtx};
    d.st->expected -= n - static_cast<size_t>(failure ? 0 : accepted);
  }
  if (failure) {
    if (failure == caf::sec::request_timeout)
      throw coordinator_client_error{
        client_errc::timeout,
        "the coordinator did not answer the submission within "
          + std::to_string(d.opts.request_timeout) + " s"};
    throw request_error(*d.sys, "submission refused", failure);
  }
  return static_cast<size_t>(accepted);
}

client_wait_result coordinator_client::wait(double timeout) {
  auto st = impl_->st;
  std::unique_lock<std::mutex> g{st->mtx};
  auto done = [&] { return st->open_locked() == 0 || st->lost; };
  if (timeout < 0)
    st->cv.wait(g, done);
  else
    st->cv.wait_for(g, seconds(timeout), done);
  client_wait_result r;
  r.outcomes.swap(st->pending);
  r.open = st->open_locked();
  r.disconnected = st->lost;
  return r;
}

size_t coordinator_client::open() const {
  std::lock_guard<std::mutex> g{impl_->st->mtx};
  return impl_->st->open_locked();
}

std::string coordinator_client::stats() {
  return impl_->ask_text("stats", stats_atom::value);
}

std::string coordinator_client::status_json() {
  return impl_->ask_text("status", status_atom::value);
}

cluster_status coordinator_client::status() {
  auto js = status_json();
  try {
    return nlohmann::json::parse(js).get<cluster_status>();
  } catch (const nlohmann::json::exception& e) {
    throw coordinator_client_error{client_errc::disconnected,
                                   std::string{"status: unreadable answer: "}
                                     + e.what()};
  }
}

size_t coordinator_client::cancel(std::vector<std::string> ids) {
  return cancel_tests(std::move(ids)).cancelled.size();
}

namespace {

cancel_result cancel_request_of(coordinator_client::impl& d, cancel_request rq);

} // namespace

cancel_result coordinator_client::cancel_tests(std::vector<std::string> ids) {
  return cancel_request_of(*impl_, cancel_request{std::move(ids), false});
}

cancel_result coordinator_client::cancel_all_mine() {
  return cancel_request_of(*impl_, cancel_request{{}, true});
}

namespace {

cancel_result cancel_request_of(coordinator_client::impl& d,
                                cancel_request rq) {
  std::lock_guard<std::mutex> api{d.api_mtx};
  d.require_connection();
  caf::scoped_actor self{*d.sys};
  cancel_result out;
  caf::error failure;
  self
    ->request(d.session, d.request_timeout(), cancel_atom::value, std::move(rq))
    .receive([&](cancel_result& r) { out = std::move(r); },
             [&](caf::error& e) { failure = std::move(e); });
  if (failure)
    throw request_error(*d.sys, "cancel", failure);
  return out;
}

} // namespace

std::string coordinator_client::results(const std::string& run) {
  auto& d = *impl_;
  std::lock_guard<std::mutex> api{d.api_mtx};
  d.require_connection();
  caf::scoped_actor self{*d.sys};
  std::string out;
  caf::error failure;
  self->request(d.session, d.request_timeout(), results_atom::value, run)
    .receive([&](std::string& s) { out = std::move(s); },
             [&](caf::error& e) { failure = std::move(e); });
  if (failure)
    throw request_error(*d.sys, "results", failure);
  return out;
}

log_chunk coordinator_client::read_log(const std::string& test_id, int stream,
                                       uint64_t offset, uint32_t wait_ms) {
  auto& d = *impl_;
  std::lock_guard<std::mutex> api{d.api_mtx};
  d.require_connection();
  caf::scoped_actor self{*d.sys};
  log_chunk out;
  caf::error failure;
  // A held request may take its wait on top of the usual answer time.
  auto timeout = d.request_timeout() + std::chrono::milliseconds(wait_ms);
  self
    ->request(d.session, timeout, log_atom::value,
              log_request{test_id, stream, offset, max_log_chunk, wait_ms})
    .receive([&](log_chunk& c) { out = std::move(c); },
             [&](caf::error& e) { failure = std::move(e); });
  if (failure)
    throw request_error(*d.sys, "logs", failure);
  return out;
}

std::string coordinator_client::address() const {
  std::lock_guard<std::mutex> api{impl_->api_mtx};
  return impl_->host + ":" + std::to_string(impl_->port);
}

bool coordinator_client::uses_tls() const {
  std::lock_guard<std::mutex> api{impl_->api_mtx};
  return impl_->tls != nullptr;
}

std::vector<std::string> coordinator_client::warnings() const {
  std::lock_guard<std::mutex> api{impl_->api_mtx};
  return impl_->warnings;
}

void coordinator_client::close() {
  auto& d = *impl_;
  {
    std::lock_guard<std::mutex> api{d.api_mtx};
    if (d.sys && d.recv) {
      bool alive;
      {
        std::lock_guard<std::mutex> g{d.st->mtx};
        alive = !d.st->lost;
      }
      caf::scoped_actor self{*d.sys};
      self->monitor(d.recv);
      self->send(d.recv, leave_atom::value);
      self->receive([](caf::down_msg&) {},
                    caf::after(std::chrono::seconds(2)) >> [] {});
      // The coordinator hears of the receiver's end on this connection
      // before this request, so once it answers it has seen the clean
      // leave; shutting the connection down earlier could turn it into a
      // lost connection.
      if (alive)
        self->request(d.session, std::chrono::seconds(2), stats_atom::value)
          .receive([](std::string&) {}, [](caf::error&) {});
    }
    d.shutdown();
  }
  // Waiters get what arrived; nothing more will.
  d.st->lose();
}

} // namespace alb
