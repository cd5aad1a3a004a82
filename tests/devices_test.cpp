// A node's accelerator devices: the allocator never hands one device to two
// runs and takes devices back when a run ends; the pinning environment; the
// nvidia-smi CSV parser on real, odd and garbage output.

#define BOOST_TEST_MODULE devices
#include <boost/test/unit_test.hpp>

#include <set>
#include <string>

#include "runtime/devices.hpp"
#include "runtime/rng.hpp"

using namespace alb;

namespace {

std::map<std::string, int> cuda(int n) {
  return {{"cuda", n}};
}

} // namespace

BOOST_AUTO_TEST_CASE(two_one_gpu_runs_get_different_devices) {
  device_allocator a{{{"cuda", {0, 1}}}};
  auto x = a.acquire(1, cuda(1));
  auto y = a.acquire(2, cuda(1));
  BOOST_REQUIRE(x && y);
  BOOST_TEST(x->at("cuda") == std::vector<int>{0});
  BOOST_TEST(y->at("cuda") == std::vector<int>{1});
  BOOST_TEST(a.free_count("cuda") == 0u);
}

BOOST_AUTO_TEST_CASE(a_run_needing_more_than_is_free_gets_nothing) {
  device_allocator a{{{"cuda", {0, 1}}, {"rocm", {0}}}};
  BOOST_REQUIRE(a.acquire(1, cuda(1)));
  BOOST_TEST(!a.acquire(2, cuda(2)));
  // All or nothing across types: the rocm device stays free.
  BOOST_TEST(!a.acquire(3, {{"rocm", 1}, {"cuda", 2}}));
  BOOST_TEST(a.free_count("rocm") == 1u);
  BOOST_TEST(a.free_count("cuda") == 1u);
  BOOST_TEST(!a.acquire(4, {{"tpu", 1}}));
}

BOOST_AUTO_TEST_CASE(release_frees_the_devices_for_the_next_run) {
  device_allocator a{{{"cuda", {0, 1}}}};
  BOOST_REQUIRE(a.acquire(1, cuda(1)));
  BOOST_REQUIRE(a.acquire(2, cuda(1)));
  a.release(1);
  auto z = a.acquire(3, cuda(1));
  BOOST_REQUIRE(z);
  BOOST_TEST(z->at("cuda") == std::vector<int>{0});
  a.release(2);
  a.release(3);
  a.release(3); // twice: nothing more to give back
  auto both = a.acquire(4, cuda(2));
  BOOST_REQUIRE(both);
  BOOST_TEST(both->at("cuda") == (std::vector<int>{0, 1}));
  BOOST_TEST(a.holders() == 1u);
}

BOOST_AUTO_TEST_CASE(runs_without_accelerators_hold_nothing) {
  device_allocator a{{{"cuda", {0}}}};
  auto x = a.acquire(1, {});
  auto y = a.acquire(2, {{"cuda", 0}});
  BOOST_REQUIRE(x && y);
  BOOST_TEST(x->empty());
  BOOST_TEST(a.free_count("cuda") == 1u);
  // On a node without devices too.
  device_allocator none;
  BOOST_TEST(none.acquire(1, {}).has_value());
  BOOST_TEST(!none.acquire(2, cuda(1)).has_value());
}

BOOST_AUTO_TEST_CASE(an_owner_cannot_acquire_twice) {
  device_allocator a{{{"cuda", {0, 1}}}};
  BOOST_REQUIRE(a.acquire(1, cuda(1)));
  BOOST_TEST(!a.acquire(1, cuda(1)));
  BOOST_TEST(a.free_count("cuda") == 1u);
}

BOOST_AUTO_TEST_CASE(indices_are_the_nodes_own) {
  // nvidia-smi may list indices that do not start at 0 (e.g. a node that
  // hides some); duplicates are one device.
  device_allocator a{{{"cuda", {3, 5, 5}}}};
  BOOST_TEST(a.devices().at("cuda") == (std::vector<int>{3, 5}));
  auto x = a.acquire(1, cuda(2));
  BOOST_REQUIRE(x);
  BOOST_TEST(x->at("cuda") == (std::vector<int>{3, 5}));
  BOOST_TEST(a.held_by(1).at("cuda") == (std::vector<int>{3, 5}));
  BOOST_TEST(a.held_by(2).empty());
}

BOOST_AUTO_TEST_CASE(random_runs_never_share_a_device) {
  // Runs start and end in random order; at every step the devices held
  // are disjoint and their number plus the free ones is the total.
  device_allocator a{{{"cuda", {0, 1, 2, 3}}}};
  rng r;
  r.reseed(7);
  std::map<uint64_t, std::vector<int>> live;
  uint64_t next = 0;
  for (int step = 0; step < 5000; ++step) {
    if (!live.empty() && r.uniform(0, 1) < 0.45) {
      auto it = live.begin();
      std::advance(it, static_cast<long>(r.uniform(0, 1) * live.size())
                         % static_cast<long>(live.size()));
      a.release(it->first);
      live.erase(it);
    } else {
      int n = 1 + static_cast<int>(r.uniform(0, 1) * 3);
      auto got = a.acquire(next, cuda(n));
      if (got) {
        BOOST_REQUIRE(got->at("cuda").size() == static_cast<size_t>(n));
        live[next] = got->at("cuda");
      }
      ++next;
    }
    std::set<int> seen;
    size_t held = 0;
    for (auto& [owner, ds] : live) {
      held += ds.size();
      seen.insert(ds.begin(), ds.end());
    }
    BOOST_REQUIRE(seen.size() == held);
    BOOST_REQUIRE(held + a.free_count("cuda") == 4u);
  }
}

BOOST_AUTO_TEST_CASE(env_pins_exactly_the_held_devices) {
  device_map managed{{"cuda", {0, 1}}, {"rocm", {0}}, {"my-npu", {0}}};
  auto env = visible_devices_env({{"cuda", {1}}, {"rocm", {0}}}, managed);
  BOOST_TEST(env.at("CUDA_VISIBLE_DEVICES") == "1");
  BOOST_TEST(env.at("ALB_CUDA_DEVICES") == "1");
  BOOST_TEST(env.at("HIP_VISIBLE_DEVICES") == "0");
  BOOST_TEST(env.at("ROCR_VISIBLE_DEVICES") == "0");
  // A managed type the test holds none of: it sees none.
  BOOST_TEST(env.at("ALB_MY_NPU_DEVICES") == "");
  auto two = visible_devices_env({{"cuda", {0, 1}}}, managed);
  BOOST_TEST(two.at("CUDA_VISIBLE_DEVICES") == "0,1");
  BOOST_TEST(two.at("HIP_VISIBLE_DEVICES") == "");
}

BOOST_AUTO_TEST_CASE(env_leaves_unmanaged_types_alone) {
  // A node without GPUs does not touch CUDA_VISIBLE_DEVICES.
  BOOST_TEST(visible_devices_env({}, {}).empty());
  auto env = visible_devices_env({}, {{"cuda", {0}}});
  BOOST_TEST(env.at("CUDA_VISIBLE_DEVICES") == "");
  BOOST_TEST(env.count("HIP_VISIBLE_DEVICES") == 0u);
}

BOOST_AUTO_TEST_CASE(parses_nvidia_smi_csv_with_header) {
  auto gpus = parse_nvidia_smi_csv("index, memory.total [MiB], name\n"
                                   "0, 81920 MiB, NVIDIA A100-SXM4-80GB\n"
                                   "1, 16384 MiB, Tesla V100, PCIe\n"
                                   "\n");
  BOOST_REQUIRE(gpus.size() == 2u);
  BOOST_TEST(gpus[0].index == 0);
  BOOST_TEST(gpus[0].memory_mib == 81920.0);
  BOOST_TEST(gpus[0].name == "NVIDIA A100-SXM4-80GB");
  BOOST_TEST(gpus[1].index == 1);
  BOOST_TEST(gpus[1].name == "Tesla V100, PCIe");
}

BOOST_AUTO_TEST_CASE(parses_noheader_nounits_and_crlf) {
  auto gpus = parse_nvidia_smi_csv("2, 24576, NVIDIA L4\r\n3, [N/A], X\r\n");
  BOOST_REQUIRE(gpus.size() == 2u);
  BOOST_TEST(gpus[0].index == 2);
  BOOST_TEST(gpus[0].memory_mib == 24576.0);
  BOOST_TEST(gpus[1].memory_mib == 0.0);
  BOOST_TEST(parse_nvidia_smi_csv("index, memory.total [MiB], name\n").empty());
  BOOST_TEST(parse_nvidia_smi_csv("").empty());
}

BOOST_AUTO_TEST_CASE(garbage_is_a_clear_error) {
  auto message = [](const std::string& text) {
    try {
      parse_nvidia_smi_csv(text);
    } catch (const device_error& e) {
      return std::string{e.what()};
    }
    return std::string{"no error"};
  };
  auto m = message("index, memory.total [MiB], name\nGPU 0: Tesla (UUID)\n");
  BOOST_TEST(m.find("line 2") != std::string::npos, m);
  BOOST_TEST(m.find("3 comma-separated fields") != std::string::npos, m);
  m = message("x, 100 MiB, A\n");
  BOOST_TEST(m.find("bad device index 'x'") != std::string::npos, m);
  m = message("0, lots, A\n");
  BOOST_TEST(m.find("bad memory 'lots'") != std::string::npos, m);
  m = message("0, 100 GiB, A\n");
  BOOST_TEST(m.find("bad memory") != std::string::npos, m);
  m = message("0, 100 MiB, A\n0, 100 MiB, B\n");
  BOOST_TEST(m.find("duplicate device index 0") != std::string::npos, m);
  m = message("-1, 100 MiB, A\n");
  BOOST_TEST(m.find("bad device index") != std::string::npos, m);
  m = message("0, 100 MiB, \n");
  BOOST_TEST(m.find("empty name") != std::string::npos, m);
  m = message("index, memory.used [MiB], name\n");
  BOOST_TEST(m.find("header") != std::string::npos, m);
}
