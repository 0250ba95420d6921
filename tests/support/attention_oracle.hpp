// The tests' name for the mock host's f64 attention oracle (one copy, in mock_host).
#pragma once

#include <atb/mock_host/attention_oracle.hpp>

namespace atb::test {
using mock_host::oracle_attention;
using mock_host::OracleShape;
}  // namespace atb::test
