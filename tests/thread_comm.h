// A Comm over threads for the tests: N in-process "ranks" sharing memory, whose
// collectives sum in rank order (every rank gets bit-identical results, as MPI does).
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "comm/comm.h"

namespace rpt::test {

// What the ranks share: one pointer slot each and a reusable barrier.
struct ThreadHub {
    explicit ThreadHub(int n) : ranks(n), slots(size_t(n)) {}
    void barrier() {
        std::unique_lock<std::mutex> lock(mutex);
        const int64_t generation = generation_;
        if (++waiting == ranks) {
            waiting = 0;
            ++generation_;
            cv.notify_all();
        } else {
            cv.wait(lock, [&] { return generation_ != generation; });
        }
    }
    int ranks;
    std::vector<const void*> slots;
    std::mutex mutex;
    std::condition_variable cv;
    int waiting = 0;
    int64_t generation_ = 0;
};

// Collectives sum in rank order, so every rank gets bit-identical results (as MPI does).
// Each posts its pointer, all read between two barriers, each writes only its own memory.
class ThreadComm final : public Comm {
public:
    ThreadComm(ThreadHub& hub, int rank) : Comm(OpContext{}), hub_(hub), rank_(rank) {}
    int rank() const override { return rank_; }
    int size() const override { return hub_.ranks; }
    int local_rank() const override { return rank_; }
    const char* backend() const override { return "threads"; }

    void allreduce_sum(const Tensor& x) override { sum_in_place(x.f32(), size_t(x.numel())); }
    void reduce_scatter_sum(const Tensor& in, const Tensor& out) override {
        const size_t n = size_t(out.numel());
        post(in.data);
        for (size_t i = 0; i < n; ++i) {
            float s = 0;
            for (int r = 0; r < size(); ++r) s += slot<float>(r)[size_t(rank_) * n + i];
            out.f32()[i] = s;
        }
        hub_.barrier();
    }
    void all_gather(const Tensor& in, const Tensor& out) override {
        const size_t n = size_t(in.numel());
        post(in.data);
        for (int r = 0; r < size(); ++r)
            if (slot<float>(r) != out.f32() + size_t(r) * n)
                std::copy_n(slot<float>(r), n, out.f32() + size_t(r) * n);
        hub_.barrier();
    }
    void broadcast(const Tensor& x, int root) override {
        post(x.data);
        if (rank_ != root) std::copy_n(slot<float>(root), size_t(x.numel()), x.f32());
        hub_.barrier();
    }
    void barrier() override { hub_.barrier(); }
    void allreduce_sum_host(double* values, size_t count) override { sum_in_place(values, count); }
    void allreduce_sum_host(int64_t* values, size_t count) override { sum_in_place(values, count); }
    void broadcast_host(void* bytes, size_t count, int root) override {
        post(bytes);
        if (rank_ != root) std::memcpy(bytes, hub_.slots[size_t(root)], count);
        hub_.barrier();
    }
    [[noreturn]] void abort_all(const std::string&) override { std::abort(); }

private:
    void post(const void* p) {
        hub_.slots[size_t(rank_)] = p;
        hub_.barrier();
    }
    template <class T>
    const T* slot(int r) const {
        return static_cast<const T*>(hub_.slots[size_t(r)]);
    }
    template <class T>
    void sum_in_place(T* values, size_t count) {
        post(values);
        std::vector<T> sum(count, T(0));
        for (int r = 0; r < size(); ++r)
            for (size_t i = 0; i < count; ++i) sum[i] += slot<T>(r)[i];
        hub_.barrier();
        std::copy(sum.begin(), sum.end(), values);
    }
    ThreadHub& hub_;
    int rank_;
};

// Runs body(comm) on `ranks` threads.
template <class Body>
void on_ranks(int ranks, Body body) {
    ThreadHub hub(ranks);
    std::vector<std::thread> threads;
    for (int r = 0; r < ranks; ++r)
        threads.emplace_back([&hub, r, &body] {
            ThreadComm comm(hub, r);
            body(comm);
        });
    for (std::thread& t : threads) t.join();
}

}  // namespace rpt::test
