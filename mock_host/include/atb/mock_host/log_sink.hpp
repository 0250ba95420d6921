// Host services a plugin calls back into, as GoogleMock mocks: tests state expectations on them
// (e.g. a refused forward logs exactly once at error level).
#pragma once

#include <atb/abi.h>

#include <gmock/gmock.h>

#include <string>

namespace atb::mock_host {

// Where a plugin's log records go.
class LogSink {
 public:
  virtual ~LogSink() = default;
  virtual void log(int32_t level, const std::string& logger, const std::string& message) = 0;
};

class MockLogSink : public LogSink {
 public:
  MOCK_METHOD(void, log, (int32_t level, const std::string& logger, const std::string& message), (override));
};

// The ABI host services whose log callback forwards to `sink` (which must outlive every plugin
// call made with them), passing records at `level` and above.
atb_host_services host_services_for(LogSink& sink, int32_t level = ATB_LOG_WARN);

}  // namespace atb::mock_host
