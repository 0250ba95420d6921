// A process-wide worker pool shared by every backend of a plugin.  Several host threads may run
// parallel_for at once (forwards on different layers); each call is a job that the caller works on
// too, so a call never waits on work it cannot help with.
#pragma once

#include <cstdint>
#include <functional>

namespace atb::kit {

// Runs task(i) for i in [0, count) on at most `max_threads` threads (the caller included) and
// returns when all are done.  Tasks must not throw.  The partition of work is the caller's (one task
// per index), so results never depend on how many threads ran them.
void parallel_for(int64_t count, int max_threads, const std::function<void(int64_t)>& task);

// std::thread::hardware_concurrency(), at least 1.
int hardware_threads();

}  // namespace atb::kit
