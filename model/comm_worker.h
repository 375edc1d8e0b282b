// One communication thread that runs tasks (bucket reductions, ZeRO-3 gathers) in the
// order they were submitted, while the submitting thread goes on computing. FIFO on one
// thread keeps the collectives in the same order on every rank (and the same order as
// running them inline), so an overlapped run is bit-identical to an unoverlapped one.
// MPI must allow a second thread to call it (MPI_THREAD_SERIALIZED): the submitter makes
// no MPI call between submit() and the wait() that drains the tasks.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <queue>
#include <thread>

namespace rpt {

class CommWorker {
public:
    CommWorker();
    ~CommWorker();  // drains the queue, then joins
    CommWorker(const CommWorker&) = delete;
    CommWorker& operator=(const CommWorker&) = delete;

    // Queues `task`; returns its ticket (1, 2, ...) for wait().
    int64_t submit(std::function<void()> task);
    // Blocks until every task up to `ticket` has run; rethrows the first task's exception.
    void wait(int64_t ticket);
    void wait_all() { wait(submitted_); }

private:
    void run();

    std::mutex mutex_;
    std::condition_variable changed_;
    std::queue<std::function<void()>> tasks_;
    int64_t submitted_ = 0, completed_ = 0;  // tickets
    std::exception_ptr error_;
    bool stopping_ = false;
    std::thread thread_;  // last: starts after the fields it reads
};

}  // namespace rpt
