#include "rl/update_rows.h"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

#include "model/flops.h"

namespace rpt {

std::vector<PackedRow> build_rows(const std::vector<int>& kept_slots, bool share_prompt, int group_size,
                                  int max_slots_per_row) {
    std::vector<PackedRow> rows;
    for (int s : kept_slots) {
        const int group = s / group_size;
        const bool fits = share_prompt && !rows.empty() && rows.back().group == group &&
                          int(rows.back().slots.size()) < max_slots_per_row;
        if (!fits) rows.push_back({group, {}});
        rows.back().slots.push_back(s);
    }
    return rows;
}

namespace {

int row_length(const PackedRow& row, const std::vector<std::vector<int32_t>>& prompts, const RolloutResult& rollouts) {
    int length = int(prompts[size_t(row.group)].size()) - 1;
    for (int s : row.slots) length += int(rollouts.responses[size_t(s)].size());
    return length;
}

}  // namespace

MicroBatch make_micro_batch(const std::vector<PackedRow>& rows, size_t first, size_t count,
                            const std::vector<std::vector<int32_t>>& prompts, const RolloutResult& rollouts) {
    MicroBatch mb;
    mb.rows = int(count);
    for (size_t m = 0; m < count; ++m) mb.packed = mb.packed || rows[first + m].slots.size() > 1;
    for (size_t m = 0; m < count; ++m) mb.T = std::max(mb.T, row_length(rows[first + m], prompts, rollouts));
    const size_t n = size_t(mb.rows) * size_t(mb.T);
    mb.tokens.assign(n, 0);
    mb.targets.assign(n, -1);
    mb.positions.assign(n, 0);
    mb.segments.assign(n, 0);
    for (int m = 0; m < mb.rows; ++m) {
        const PackedRow& row = rows[first + size_t(m)];
        const auto& prompt = prompts[size_t(row.group)];
        const int P = int(prompt.size());
        const size_t base = size_t(m) * size_t(mb.T);
        int at = 0;
        for (; at < P - 1; ++at) {
            mb.tokens[base + size_t(at)] = prompt[size_t(at)];
            mb.positions[base + size_t(at)] = at;
        }
        int32_t segment = 0;
        for (int s : row.slots) {
            const auto& resp = rollouts.responses[size_t(s)];
            const int r = int(resp.size());
            ++segment;
            mb.spans.push_back({s, m, at, r});
            for (int j = 0; j < r; ++j, ++at) {
                mb.tokens[base + size_t(at)] = j == 0 ? prompt.back() : resp[size_t(j - 1)];
                mb.targets[base + size_t(at)] = resp[size_t(j)];
                mb.positions[base + size_t(at)] = P - 1 + j;
                mb.segments[base + size_t(at)] = segment;
            }
        }
        // Padding continues the row's last token's position and segment: never read by a
        // real token (causal), never out of the model's context when the last token is
        // not, and segment ids still never decrease along the row (kernels/ops.h).
        const int32_t last_position = at > 0 ? mb.positions[base + size_t(at - 1)] : 0;
        for (int pad = at; pad < mb.T; ++pad) {
            mb.positions[base + size_t(pad)] = last_position;
            mb.segments[base + size_t(pad)] = segment;
        }
    }
    return mb;
}

double micro_batch_flops(const ModelConfig& c, const MicroBatch& mb) {
    double pairs = 0, prompt = 0;
    int row = -1;
    for (const ResponseSpan& sp : mb.spans) {
        if (sp.row != row) {  // a row's first response starts right after its shared prompt
            row = sp.row;
            prompt = double(sp.begin);
            pairs += prompt * (prompt + 1) / 2;
        }
        pairs += prompt * sp.length + double(sp.length) * (sp.length + 1) / 2;
    }
    return forward_flops(c, double(mb.rows) * mb.T, pairs);
}

std::vector<int32_t> response_token_index(const MicroBatch& mb, int R) {
    std::vector<int32_t> index(mb.spans.size() * size_t(R), -1);
    for (size_t i = 0; i < mb.spans.size(); ++i) {
        const ResponseSpan& sp = mb.spans[i];
        // The device ops trust the map: a span outside the batch is a bug here, not input.
        if (sp.length > R || sp.row < 0 || sp.row >= mb.rows || sp.begin < 0 || sp.begin + sp.length > mb.T)
            throw std::logic_error(fmt::format("response span (row {}, begin {}, length {}) outside the ({}, {}) batch "
                                               "or longer than R = {}",
                                               sp.row, sp.begin, sp.length, mb.rows, mb.T, R));
        for (int j = 0; j < sp.length; ++j)
            index[i * size_t(R) + size_t(j)] = int32_t(int64_t(sp.row) * mb.T + sp.begin + j);
    }
    return index;
}


}  // namespace rpt
