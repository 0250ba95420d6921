#include <atb/kit/thread_pool.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace atb::kit {
namespace {

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
    }
    wake_.notify_all();
    job->work();
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
      std::shared_ptr<Job> job;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      job->work();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::vector<std::thread> workers_;
  bool stopping_ = false;
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
