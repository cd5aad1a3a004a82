// Captured test output: the cap's byte counting (output_budget), the
// capture itself on real processes (stdout and stderr apart, the cap held
// while the test runs, exactly-at-cap passes), the log directory (names
// that stay inside it, pruning by count and size) and sizes as written.

#define BOOST_TEST_MODULE output_capture
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <sstream>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/byte_size.hpp"
#include "runtime/output_capture.hpp"
#include "runtime/process.hpp"
#include "runtime/test_logs.hpp"

using namespace alb;
using namespace std::chrono_literals;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

uint64_t file_size(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

/// A flag set from another thread (the capture's).
struct latch {
  std::mutex mtx;
  std::condition_variable cv;
  bool set = false;
  void fire() {
    std::lock_guard<std::mutex> g{mtx};
    set = true;
    cv.notify_all();
  }
  bool wait() {
    std::unique_lock<std::mutex> g{mtx};
    return cv.wait_for(g, 20s, [this] { return set; });
  }
};

/// Runs `argv` with its output captured into the store under `id`;
/// `on_limit` (if any) kills it. Returns the capture after it ended.
std::shared_ptr<output_capture> run(test_log_store& logs, const std::string& id,
                                    std::vector<std::string> argv, uint64_t cap,
                                    latch* limit = nullptr) {
  int files[2];
  std::string error;
  BOOST_REQUIRE_MESSAGE(logs.create(id, files, error), error);
  auto c = output_capture::start(
    files[0], files[1], cap,
    [limit] {
      if (limit)
        limit->fire();
    },
    error);
  BOOST_REQUIRE_MESSAGE(c, error);
  spawn_options o;
  o.argv = std::move(argv);
  o.stdout_fd = c->stdout_writer();
  o.stderr_fd = c->stderr_writer();
  auto p = process::spawn(o, error);
  c->close_writers();
  BOOST_REQUIRE_MESSAGE(p.running(), error);
  if (limit) {
    BOOST_REQUIRE(limit->wait());
    p.stop();
  }
  p.wait();
  c->finish();
  logs.closed(id, c->stdout_bytes() + c->stderr_bytes());
  return c;
}

std::shared_ptr<test_log_store> temp_store(test_log_options o = {}) {
  std::string error;
  auto s = test_log_store::open(o, error);
  BOOST_REQUIRE_MESSAGE(s, error);
  return s;
}

} // namespace

BOOST_AUTO_TEST_CASE(budget_gives_room_up_to_the_cap_and_flags_more) {
  output_budget b{100};
  BOOST_TEST(b.room(60) == 60u);
  b.used(60);
  BOOST_TEST(b.room(60) == 40u);
  b.used(40);
  BOOST_TEST(b.room(1) == 0u);
  BOOST_TEST(!b.exceeded());
  b.overflow();
  BOOST_TEST(b.exceeded());
  BOOST_TEST(b.total() == 100u);
  output_budget none{0};
  BOOST_TEST(none.room(1u << 30) == (1u << 30));
  none.overflow();
  BOOST_TEST(!none.exceeded());
}

BOOST_AUTO_TEST_CASE(stdout_and_stderr_go_to_their_own_files) {
  auto logs = temp_store();
  auto c = run(*logs, "apart",
               {"sh", "-c", "echo one; echo two >&2; echo three"}, 1 << 20);
  BOOST_TEST(slurp(logs->path("apart", test_log_store::out)) == "one\nthree\n");
  BOOST_TEST(slurp(logs->path("apart", test_log_store::err)) == "two\n");
  BOOST_TEST(c->stdout_bytes() == 10u);
  BOOST_TEST(c->stderr_bytes() == 4u);
  BOOST_TEST(!c->exceeded());
  BOOST_TEST(c->tail(output_capture::out, 6) == "three\n");
  BOOST_TEST(c->tail(output_capture::err, 100) == "two\n");
}

BOOST_AUTO_TEST_CASE(endless_output_is_stopped_at_the_cap_while_it_runs) {
  auto logs = temp_store();
  latch limit;
  const uint64_t cap = 256 * 1024;
  // `yes` never ends by itself: only the callback (then a kill) ends it.
  auto c = run(*logs, "endless", {"yes", "spam"}, cap, &limit);
  BOOST_TEST(c->exceeded());
  BOOST_TEST(c->stdout_bytes() == cap);
  BOOST_TEST(file_size(logs->path("endless", test_log_store::out)) == cap);
  // Both streams share the cap.
  latch both;
  auto d = run(*logs, "both", {"sh", "-c", "yes a & yes b >&2"}, cap, &both);
  BOOST_TEST(d->exceeded());
  BOOST_TEST(d->stdout_bytes() + d->stderr_bytes() == cap);
}

BOOST_AUTO_TEST_CASE(output_exactly_at_the_cap_is_not_past_it) {
  auto logs = temp_store();
  auto c = run(*logs, "exact", {"head", "-c", "4096", "/dev/zero"}, 4096);
  BOOST_TEST(!c->exceeded());
  BOOST_TEST(c->stdout_bytes() == 4096u);
  // One byte more is past it, even when the test ends by itself.
  auto d = run(*logs, "one-more", {"head", "-c", "4097", "/dev/zero"}, 4096);
  BOOST_TEST(d->exceeded());
  BOOST_TEST(d->stdout_bytes() == 4096u);
}

BOOST_AUTO_TEST_CASE(log_names_stay_inside_the_directory) {
  auto a = test_log_store::stem("../../etc/passwd");
  BOOST_TEST(a.find('/') == std::string::npos);
  BOOST_TEST(a.rfind("..", 0) != 0);
  BOOST_TEST(test_log_store::stem("a/b") != test_log_store::stem("a_b"));
  BOOST_TEST(test_log_store::stem(".hidden")[0] != '.');
  BOOST_TEST(test_log_store::stem(std::string(500, 'x')).size() < 120u);
  BOOST_TEST(test_log_store::stem("unit-1").rfind("unit-1-", 0) == 0u);
}

BOOST_AUTO_TEST_CASE(old_logs_are_pruned_by_count_and_by_size) {
  test_log_options o;
  o.max_tests = 3;
  o.max_total_bytes = 1 << 20;
  auto logs = temp_store(o);
  for (int i = 0; i < 5; ++i)
    run(*logs, "t" + std::to_string(i), {"echo", "hello"}, 0);
  BOOST_TEST(logs->kept() == 3u);
  BOOST_TEST(file_size(logs->path("t4", test_log_store::out)) == 6u);
  BOOST_TEST(::access(logs->path("t0", test_log_store::out).c_str(), F_OK)
             != 0);
  BOOST_TEST(::access(logs->path("t1", test_log_store::err).c_str(), F_OK)
             != 0);
  // Size: two tests of 600 KiB do not fit in 1 MiB together.
  run(*logs, "big1", {"head", "-c", "614400", "/dev/zero"}, 0);
  run(*logs, "big2", {"head", "-c", "614400", "/dev/zero"}, 0);
  BOOST_TEST(logs->kept_bytes() <= o.max_total_bytes);
  BOOST_TEST(::access(logs->path("big1", test_log_store::out).c_str(), F_OK)
             != 0);
  BOOST_TEST(file_size(logs->path("big2", test_log_store::out)) == 614400u);
}

BOOST_AUTO_TEST_CASE(a_reopened_directory_counts_what_it_holds) {
  auto dir = temp_store();
  test_log_options o;
  o.dir = dir->dir() + "/sub/logs";
  o.max_tests = 2;
  {
    auto logs = temp_store(o);
    run(*logs, "x", {"echo", "1"}, 0);
    run(*logs, "y", {"echo", "2"}, 0);
  }
  auto again = temp_store(o);
  BOOST_TEST(again->kept() == 2u);
  run(*again, "z", {"echo", "3"}, 0);
  BOOST_TEST(again->kept() == 2u);
  BOOST_TEST(::access(again->path("z", test_log_store::out).c_str(), F_OK)
             == 0);
  // Cleaned up with the temporary parent.
  for (auto* id : {"x", "y", "z"})
    for (auto s : {test_log_store::out, test_log_store::err})
      ::unlink(again->path(id, s).c_str());
  ::rmdir(o.dir.c_str());
  ::rmdir((dir->dir() + "/sub").c_str());
}

BOOST_AUTO_TEST_CASE(sizes_parse_as_written_and_are_range_checked) {
  BOOST_TEST(parse_byte_size("1048576").value() == 1048576u);
  BOOST_TEST(parse_byte_size("64MiB").value() == (64u << 20));
  BOOST_TEST(parse_byte_size("64 mb").value() == (64u << 20));
  BOOST_TEST(parse_byte_size("512K").value() == (512u << 10));
  BOOST_TEST(parse_byte_size("1G").value() == (1u << 30));
  BOOST_TEST(!parse_byte_size("lots"));
  BOOST_TEST(!parse_byte_size("12 parsecs"));
  BOOST_TEST(!parse_byte_size("-1"));
  BOOST_TEST(!parse_byte_size("99999999999999999999"));
  BOOST_TEST(!parse_byte_size("20000000T"));
  BOOST_TEST(format_bytes(64u << 20) == "64 MiB");
  BOOST_TEST(format_bytes(1500) == "1500 bytes");
  BOOST_TEST(check_max_output(64u << 20).empty());
  BOOST_TEST(!check_max_output(12).empty());
  BOOST_TEST(!check_max_output(uint64_t{2} << 40).empty());
}
