// Node constraints: the software requirement syntax, version comparison,
// matching against a worker's software and tags, and the cluster's reason
// why no node can ever hold a test.

#define BOOST_TEST_MODULE constraints
#include <boost/test/unit_test.hpp>

#include <string>

#include "runtime/cluster_state.hpp"
#include "runtime/constraints.hpp"

using namespace alb;

namespace {

software_need need(const std::string& text) {
  std::string error;
  auto n = parse_software_need(text, error);
  BOOST_REQUIRE_MESSAGE(n, text + ": " + error);
  return *n;
}

std::string syntax_error(const std::string& text) {
  std::string error;
  auto n = parse_software_need(text, error);
  return n ? "no error" : error;
}

worker_capabilities node(const std::string& id,
                         std::map<std::string, std::string> sw,
                         std::vector<std::string> tags = {},
                         std::map<std::string, int> accel = {},
                         double memory = 8) {
  worker_capabilities w;
  w.worker_id = id;
  w.cpu_cores = 2;
  w.available_memory = memory;
  w.software_versions = std::move(sw);
  w.tags = std::move(tags);
  w.available_accelerators = std::move(accel);
  w.supported_backends = {"cpu"};
  return w;
}

} // namespace

BOOST_AUTO_TEST_CASE(parses_names_operators_and_versions) {
  auto n = need("torch >= 2.1");
  BOOST_TEST(n.name == "torch");
  BOOST_TEST((n.op == version_op::ge));
  BOOST_TEST(n.version == "2.1");
  BOOST_TEST((need("cuda=12.1").op == version_op::eq));
  BOOST_TEST((need("cuda == 12.1").op == version_op::eq));
  BOOST_TEST((need("torch!=2.0").op == version_op::ne));
  BOOST_TEST((need(" numpy<2 ").op == version_op::lt));
  BOOST_TEST((need("numpy <= 1.26.4").op == version_op::le));
  BOOST_TEST((need("jax>0.4").op == version_op::gt));
  auto bare = need("python");
  BOOST_TEST((bare.op == version_op::any));
  BOOST_TEST(bare.version.empty());
  BOOST_TEST(to_string(need("torch>=2.1")) == "torch >= 2.1");
  BOOST_TEST(to_string(bare) == "python");
  BOOST_TEST(need("onnxruntime-gpu >= 1.17.0rc1").version == "1.17.0rc1");
}

BOOST_AUTO_TEST_CASE(bad_syntax_says_what_is_wrong) {
  BOOST_TEST(syntax_error("torch >>= 2").find("unknown operator '>>='")
             != std::string::npos);
  BOOST_TEST(syntax_error("torch >= ").find("missing version")
             != std::string::npos);
  BOOST_TEST(syntax_error("torch 2.1").find("expected an operator")
             != std::string::npos);
  BOOST_TEST(syntax_error(">= 2.1").find("does not start with a software name")
             != std::string::npos);
  BOOST_TEST(syntax_error("").find("empty") != std::string::npos);
  BOOST_TEST(syntax_error("torch >= 2..1").find("bad version")
             != std::string::npos);
  BOOST_TEST(syntax_error("torch >= 2.1 3").find("bad version")
             != std::string::npos);
  BOOST_TEST(validate_tag("").find("empty") != std::string::npos);
  BOOST_TEST(validate_tag("a b").find("space") != std::string::npos);
  BOOST_TEST(validate_tag("gpu-rack").empty());
}

BOOST_AUTO_TEST_CASE(versions_compare_part_by_part) {
  BOOST_TEST(compare_versions("2.10", "2.9") > 0);
  BOOST_TEST(compare_versions("12.1", "12.1.0") == 0);
  BOOST_TEST(compare_versions("12", "12.1") < 0);
  BOOST_TEST(compare_versions("1.02", "1.2") == 0);
  BOOST_TEST(compare_versions("2.3.1+cu121", "2.3.1") == 0);
  BOOST_TEST(compare_versions("1.0rc1", "1.0") > 0);
  BOOST_TEST(compare_versions("3.11.2", "3.9") > 0);
  BOOST_TEST(compare_versions("100", "99") > 0);
}

BOOST_AUTO_TEST_CASE(satisfies_compares_the_nodes_version) {
  std::map<std::string, std::string> have{
    {"torch", "2.3.1"}, {"cuda", "12.1"}, {"python", "3.11.2"}, {"mkl", ""}};
  BOOST_TEST(satisfies(need("torch >= 2.1"), have));
  BOOST_TEST(!satisfies(need("torch >= 3"), have));
  BOOST_TEST(satisfies(need("torch < 2.4"), have));
  BOOST_TEST(!satisfies(need("torch < 2.3"), have));
  BOOST_TEST(satisfies(need("cuda = 12.1"), have));
  BOOST_TEST(satisfies(need("cuda = 12.1.0"), have));
  BOOST_TEST(!satisfies(need("cuda = 12"), have));
  BOOST_TEST(satisfies(need("cuda != 11.8"), have));
  BOOST_TEST(satisfies(need("python >= 3.9"), have));
  BOOST_TEST(satisfies(need("python <= 3.11.2"), have));
  BOOST_TEST(!satisfies(need("python > 3.11.2"), have));
  BOOST_TEST(!satisfies(need("tensorflow"), have));
  BOOST_TEST(satisfies(need("mkl"), have));
  // Declared without a version: it cannot promise one.
  BOOST_TEST(!satisfies(need("mkl >= 1"), have));
}

BOOST_AUTO_TEST_CASE(meets_checks_software_tags_and_backend) {
  test_requirements req;
  req.test_id = "t";
  req.required_software = {"torch >= 2.1", "os = linux"};
  req.required_tags = {"gpu-rack", "gpu-rack"};
  std::string error;
  auto c = parse_constraints(req, error);
  BOOST_REQUIRE_MESSAGE(c, error);
  BOOST_TEST(c->tags.size() == 1u);
  auto good = node("a", {{"torch", "2.3"}, {"os", "linux"}}, {"gpu-rack"});
  BOOST_TEST(meets(*c, good));
  BOOST_TEST(first_unmet(*c, good).empty());
  auto old = node("b", {{"torch", "1.13"}, {"os", "linux"}}, {"gpu-rack"});
  BOOST_TEST(!meets(*c, old));
  BOOST_TEST(first_unmet(*c, old) == "software torch >= 2.1");
  auto untagged = node("c", {{"torch", "2.3"}, {"os", "linux"}}, {"cpu-rack"});
  BOOST_TEST(first_unmet(*c, untagged) == "tag gpu-rack");
  auto neither = node("d", {{"os", "linux"}}, {});
  BOOST_TEST(
    all_unmet(*c, neither)
    == (std::vector<std::string>{"software torch >= 2.1", "tag gpu-rack"}));
  BOOST_TEST(all_unmet(*c, good).empty());
  req.required_backend = "cuda";
  c = parse_constraints(req, error);
  BOOST_TEST(first_unmet(*c, good) == "backend cuda");
  req.required_software = {"torch >>= 2"};
  BOOST_TEST(!parse_constraints(req, error));
  BOOST_TEST(error.find("required_software: ") == 0u, error);
}

BOOST_AUTO_TEST_CASE(cluster_places_by_software_version_and_tag) {
  scheduler_config cfg;
  cfg.prefetch = 0;
  cluster_state c{cfg};
  auto a = c.add_worker(node("new", {{"torch", "2.3"}}, {"gpu-rack"}), 0);
  auto b = c.add_worker(node("old", {{"torch", "1.13"}}, {"cpu-rack"}), 0);
  auto submit = [&](const std::string& id, std::vector<std::string> sw,
                    std::vector<std::string> tags) {
    test_requirements r;
    r.test_id = id;
    r.required_software = std::move(sw);
    r.required_tags = std::move(tags);
    BOOST_REQUIRE((c.submit(r, 0) == cluster_state::submit_status::accepted));
  };
  submit("new-torch", {"torch >= 2"}, {});
  submit("old-torch", {"torch < 2"}, {});
  submit("gpu", {}, {"gpu-rack"});
  submit("cpu", {}, {"cpu-rack"});
  c.dispatch(0);
  std::map<std::string, uint32_t> where;
  c.drain_outbox([&](uint32_t slot, std::vector<test_handle>& hs) {
    for (auto h : hs)
      where[c.record(h).req.test_id] = slot;
  });
  BOOST_TEST(where.at("new-torch") == a);
  BOOST_TEST(where.at("old-torch") == b);
  BOOST_TEST(where.at("gpu") == a);
  BOOST_TEST(where.at("cpu") == b);
  BOOST_TEST(c.check_invariants() == "");
}

BOOST_AUTO_TEST_CASE(submit_refuses_bad_constraint_syntax) {
  cluster_state c;
  test_requirements r;
  r.test_id = "t";
  r.required_software = {"torch >>= 2"};
  BOOST_TEST((c.submit(r, 0) == cluster_state::submit_status::invalid));
  BOOST_TEST(c.last_error().find("unknown operator") != std::string::npos,
             c.last_error());
  BOOST_TEST(validate_requirements(r).find("unknown operator")
             != std::string::npos);
}

BOOST_AUTO_TEST_CASE(unmet_reason_names_what_no_node_has) {
  scheduler_config cfg;
  cfg.prefetch = 0;
  cfg.wait_limit = 5;
  cluster_state c{cfg};
  auto reason = [&](test_requirements r) {
    r.test_id = "probe";
    test_record t;
    t.req = r;
    t.need.memory = static_cast<float>(r.minimum_memory);
    for (auto& [name, n] : r.required_accelerators) {
      auto k = c.accel_index(name);
      BOOST_REQUIRE(k >= 0);
      t.need.accel[static_cast<size_t>(k)] = static_cast<int16_t>(n);
    }
    std::string error;
    t.cons = *parse_constraints(r, error);
    return c.unmet_reason(t);
  };
  c.add_worker(node("g", {{"torch", "2.3"}}, {"gpu-rack"}, {{"cuda", 1}}), 0);
  c.add_worker(node("h", {{"torch", "1.13"}}, {"cpu-rack"}, {}, 32), 0);
  test_requirements r;
  BOOST_TEST(reason(r) == "");
  r.required_accelerators = {{"cuda", 2}};
  BOOST_TEST(reason(r) == "no node has cuda >= 2");
  r.required_accelerators = {{"cuda", 1}};
  BOOST_TEST(reason(r) == "");
  r.required_software = {"torch >= 3"};
  BOOST_TEST(reason(r) == "no node has software torch >= 3");
  r.required_software = {};
  r.required_tags = {"tpu-rack"};
  BOOST_TEST(reason(r) == "no node has tag tpu-rack");
  // Each alone is met somewhere, together nowhere.
  r.required_tags = {"cpu-rack"};
  BOOST_TEST(reason(r) == "no node meets all of its requirements at once");
  r = {};
  r.minimum_memory = 64;
  BOOST_TEST(reason(r) == "no node has 64 GB memory");
  r.minimum_memory = 16;
  r.required_accelerators = {{"cuda", 1}};
  BOOST_TEST(reason(r) == "no node meets all of its requirements at once");

  // The wait-limit failure names it too.
  test_requirements never;
  never.test_id = "never";
  never.required_software = {"torch >= 3"};
  never.wait_limit = 1;
  BOOST_REQUIRE((c.submit(never, 0) == cluster_state::submit_status::accepted));
  std::string error;
  c.set_end_listener(
    [&](const assignment& a, const attempt_outcome*) { error = a.error; });
  c.dispatch(0);
  c.tick(2);
  BOOST_TEST(error.find("no node has software torch >= 3") != std::string::npos,
             error);
}

BOOST_AUTO_TEST_CASE(unmet_reason_without_nodes) {
  cluster_state c;
  test_record t;
  BOOST_TEST(c.unmet_reason(t) == "no node has joined");
}

// After every node left, "has joined" would be untrue: the reason says that
// none is connected.
BOOST_AUTO_TEST_CASE(unmet_reason_after_every_node_left) {
  cluster_state c;
  auto a = c.add_worker(node("a", {}, {}), 0);
  c.remove_worker(a, true, 1);
  test_record t;
  BOOST_TEST(c.unmet_reason(t)
             == "no node is connected (every node that joined has left)");
}
