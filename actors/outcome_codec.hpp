#pragma once

// The wire form of a batch of outcomes (coordinator -> client): one byte
// string, packed and read here, instead of CAF's inspector walking 18
// fields per outcome (each field a virtual call and an error object): at
// 10,000 slots that walk was 9% of the coordinator's CPU, and as much
// again in the client that reads it. CAF-free.

#include <string>
#include <vector>

#include "runtime/cluster_types.hpp"

namespace alb {

/// Appends the packed form of `items` to `out`.
void pack_outcomes(const std::vector<cluster_outcome>& items, std::string& out);

/// Reads what pack_outcomes wrote into `items` (replacing them); false
/// when `in` is not such a text (cut short, bad lengths, bytes left over),
/// and then `items` is empty. It comes from the network: every length is
/// checked against what is left before anything is read or allocated.
bool unpack_outcomes(const std::string& in,
                     std::vector<cluster_outcome>& items);

} // namespace alb
