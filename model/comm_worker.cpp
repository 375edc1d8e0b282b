#include "model/comm_worker.h"

#include <utility>

namespace rpt {

CommWorker::CommWorker() : thread_([this] { run(); }) {}

CommWorker::~CommWorker() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    changed_.notify_all();
    thread_.join();
}

int64_t CommWorker::submit(std::function<void()> task) {
    std::lock_guard<std::mutex> lock(mutex_);
    tasks_.push(std::move(task));
    changed_.notify_all();
    return ++submitted_;
}

void CommWorker::wait(int64_t ticket) {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return completed_ >= ticket || error_; });
    if (error_) {
        // Once failed, the worker drops what is queued: the run is ending.
        std::exception_ptr e = error_;
        std::rethrow_exception(e);
    }
}

void CommWorker::run() {
    for (;;) {
        std::function<void()> task;
        bool failed = false;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            changed_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
            if (tasks_.empty()) return;  // stopping, and drained
            task = std::move(tasks_.front());
            tasks_.pop();
            failed = error_ != nullptr;
        }
        std::exception_ptr failure;
        if (!failed) {
            try {
                task();
            } catch (...) {
                failure = std::current_exception();
            }
        }
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (failure && !error_) error_ = failure;
            ++completed_;
        }
        changed_.notify_all();
    }
}

}  // namespace rpt
