// Statistics every rank contributes to, summed over the ranks in one collective. The
// statistics are a small struct of fields of one type (double or int64_t), so code names
// them (sums.response_tokens) instead of indexing an array (sums[3]).
#pragma once

#include <cstring>
#include <type_traits>

#include "comm/comm.h"

namespace rpt {

// Sums every field of `sums` over the ranks of comm, in place; no-op without comm.
template <typename Field, typename Sums>
void sum_over_ranks(Comm* comm, Sums& sums) {
    static_assert(std::is_trivially_copyable_v<Sums> && std::is_standard_layout_v<Sums>, "a plain struct");
    static_assert(sizeof(Sums) % sizeof(Field) == 0 && alignof(Sums) == alignof(Field), "fields of one type only");
    if (!comm) return;
    constexpr size_t kFields = sizeof(Sums) / sizeof(Field);
    Field values[kFields];
    std::memcpy(values, &sums, sizeof(Sums));
    comm->allreduce_sum_host(values, kFields);
    std::memcpy(&sums, values, sizeof(Sums));
}

}  // namespace rpt
