#include <atb/kit/thread_pool.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace atb::kit {
namespace {

// How long an idle worker, or a caller waiting for its helpers, polls before it sleeps: $ATB_POOL_POLL_US
// microseconds, default 100.  Waking a sleeping thread costs 15-35 us on a virtual machine
// (thread-pool-bench), more than a short decode step's whole work; polling keeps a worker ready
// between the calls of a step and of consecutive layers, at the price of up to that much CPU time
// after each call (0 where the host needs every core between its attention calls).
std::chrono::microseconds poll_time() {
  static const std::chrono::microseconds chosen = [] {
    const char* text = std::getenv("ATB_POOL_POLL_US");
    char* end = nullptr;
    const long value = text ? std::strtol(text, &end, 10) : -1;
    return std::chrono::microseconds(text && end != text && *end == '\0' && value >= 0 ? std::min(value, 100000L)
                                                                                       : 100L);
  }();
  return chosen;
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Polls `ready` for up to poll_time(); true once it holds.
template <class Ready>
bool poll_for(Ready ready) {
  if (poll_time().count() == 0) return ready();
  const auto deadline = std::chrono::steady_clock::now() + poll_time();
  for (int spins = 0;; ++spins) {
    if (ready()) return true;
    if (spins % 64 == 63 && std::chrono::steady_clock::now() > deadline) return false;
    cpu_relax();
  }
}

struct Job {
  const std::function<void(int64_t)>* task;
  int64_t count;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> finished{0};
  std::mutex done_mutex;
  std::condition_variable done;

  // Runs indices until none are left; returns after the last one it ran.
  void work() {
    int64_t completed = 0;
    for (int64_t i = next.fetch_add(1); i < count; i = next.fetch_add(1)) {
      (*task)(i);
      ++completed;
    }
    if (completed > 0 && finished.fetch_add(completed) + completed == count) {
      std::lock_guard lock(done_mutex);
      done.notify_all();
    }
  }
};

class Pool {
 public:
  ~Pool() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      stopping_flag_.store(true);
    }
    wake_.notify_all();
    for (auto& worker : workers_) worker.join();
  }

  void run(int64_t count, int max_threads, const std::function<void(int64_t)>& task) {
    const int helpers = static_cast<int>(std::min<int64_t>(max_threads, count)) - 1;
    if (helpers <= 0) {
      for (int64_t i = 0; i < count; ++i) task(i);
      return;
    }
    auto job = std::make_shared<Job>();
    job->task = &task;
    job->count = count;
    {
      std::lock_guard lock(mutex_);
      ensure_workers(helpers);
      for (int h = 0; h < helpers; ++h) queue_.push_back(job);
      queued_.store(queue_.size(), std::memory_order_release);
    }
    wake_.notify_all();
    job->work();
    if (poll_for([&] { return job->finished.load() == count; })) return;
    std::unique_lock lock(job->done_mutex);
    job->done.wait(lock, [&] { return job->finished.load() == count; });
    // Stale queue entries of this job are harmless: workers find no indices left in it.
  }

 private:
  void ensure_workers(int wanted) {
    while (static_cast<int>(workers_.size()) < wanted) workers_.emplace_back([this] { loop(); });
  }

  void loop() {
    for (;;) {
      poll_for([&] { return queued_.load(std::memory_order_acquire) > 0 || stopping_flag_.load(); });
      std::shared_ptr<Job> job;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;
        job = std::move(queue_.front());
        queue_.pop_front();
        queued_.store(queue_.size(), std::memory_order_release);
      }
      job->work();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::vector<std::thread> workers_;
  bool stopping_ = false;
  // Mirrors of queue_.size() and stopping_ that idle workers poll without the mutex.
  std::atomic<size_t> queued_{0};
  std::atomic<bool> stopping_flag_{false};
};

Pool& pool() {
  static Pool instance;
  return instance;
}

}  // namespace

void parallel_for(int64_t count, int max_threads, const std::function<void(int64_t)>& task) {
  if (count <= 0) return;
  pool().run(count, std::max(1, max_threads), task);
}

int hardware_threads() { return std::max(1u, std::thread::hardware_concurrency()); }

}  // namespace atb::kit
