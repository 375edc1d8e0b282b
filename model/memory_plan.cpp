#include "model/memory_plan.h"

#include <algorithm>
#include <functional>

#include <fmt/format.h>

#include "model/activations.h"
#include "model/parameters.h"
#include "model/zero_shards.h"

namespace rpt {
namespace {

// The cuBLASLt workspace each GPU context holds (kernels/cuda/gemm.cu).
constexpr size_t kCublasWorkspaceBytes = size_t(32) << 20;

size_t align64(size_t n) { return (n + 63) / 64 * 64; }

std::string mib(size_t bytes) {
    const double m = double(bytes) / 1048576.0;
    return m >= 1024.0 ? fmt::format("{:.2f} GiB", m / 1024.0) : fmt::format("{:.1f} MiB", m);
}

bool training(const PlanSettings& s) { return s.run != PlanRun::inference; }

// One forward batch shape: rows x tokens per row.
struct Shape {
    int rows = 1, T = 1;
};

// The RPT step's shapes on one rank: the prompts' prefill and the GRPO micro-batch,
// with every response at its longest (rl/update_rows.h: a shared-prompt row is the
// prompt less its last token, then each response behind its own copy of that token).
struct RptShapes {
    int contexts = 1;
    Shape prefill, update;
};

RptShapes rpt_shapes(const PlanSettings& s) {
    RptShapes r;
    r.contexts = std::max(1, s.contexts / std::max(1, s.ranks));
    const int G = s.rollouts, P = s.prompt_tokens, R = s.max_new_tokens, mbr = std::max(1, s.micro_batch_rows);
    r.prefill = {r.contexts, std::max(1, P)};
    if (s.shared_prompt) {
        const int per_row = std::min(G, mbr);
        const int total_rows = r.contexts * ((G + per_row - 1) / per_row);
        r.update = {std::min(total_rows, std::max(1, mbr / per_row)), std::max(1, P - 1 + per_row * R)};
    } else {
        r.update = {std::min(mbr, r.contexts * G), std::max(1, P - 1 + R)};
    }
    return r;
}

// Activation bytes of the largest forward and the logits chunk inside it.
struct ForwardBytes {
    size_t total = 0, logits = 0;
};

ForwardBytes largest_forward(const ModelConfig& c, const ActivationSpec& spec, const std::vector<Shape>& shapes) {
    ForwardBytes best;
    for (const Shape& sh : shapes) {
        if (sh.rows <= 0 || sh.T <= 0) continue;
        const size_t bytes = activation_bytes(spec, sh.rows, sh.T);
        if (bytes <= best.total) continue;
        const int64_t N = int64_t(sh.rows) * sh.T;
        best.total = bytes;
        best.logits = align64(size_t(logits_rows_per_chunk(N, c.vocab_size)) * size_t(c.vocab_size) * sizeof(float));
    }
    return best;
}

const char* run_name(PlanRun run) {
    switch (run) {
    case PlanRun::inference: return "inference";
    case PlanRun::pretrain: return "pretrain";
    case PlanRun::rpt: return "RPT";
    }
    return "?";
}

}  // namespace

int ntp_eval_rows(int batch, int eval_docs, int ranks) {
    const int n = std::max(1, ranks);
    return std::min(batch, (std::max(0, eval_docs) + n - 1) / n);
}

size_t MemoryPlan::total() const {
    return parameters + working + gradients + optimizer + reference + activations + logits + backward_scratch +
           kv_cache + workspace;
}

MemoryPlan plan_memory(const ModelConfig& c, const PlanSettings& s) {
    const int64_t P = ParameterLayout(c).total();
    const int N = std::max(1, s.ranks);
    const ZeroShards shards(ParameterLayout(c), N, 0);  // every rank's shard has this size
    const int64_t shard = shards.shard_size();
    const bool bf16 = s.precision == Precision::bf16;
    MemoryPlan m;
    // Phase 1: state proportional to P. Parameters stay whole at every ZeRO level
    // (model/zero_runtime.h says why); gradients below ZeRO-2.
    m.parameters = size_t(P) * sizeof(float);
    m.working = bf16 ? size_t(P) * sizeof(uint16_t) : 0;
    if (training(s)) {
        const int64_t moments = s.zero >= 1 ? shard : P;
        m.optimizer = 2 * size_t(moments) * sizeof(float);
        // ZeRO reduce-scatters into a gradient shard of its own: ZeRO-1 from the model's
        // whole buffer, ZeRO-2/3 from the slots the backward writes (model/zero_runtime.h).
        if (s.zero >= 2) m.gradients = size_t(shard + shards.gradient_slots().total()) * sizeof(float);
        else m.gradients = size_t(P + (s.zero == 1 ? shard : 0)) * sizeof(float);
        // Parameter gathers (and ZeRO-1's reduction) stage a bucket N divides unevenly.
        bool uneven = false;
        for (const ZeroBucket& k : shards.buckets()) uneven |= k.padded != k.size();
        if (s.zero >= 1 && uneven) m.optimizer += size_t(shards.max_padded()) * sizeof(float);
    }

    // Phase 2: activations of the largest batch shape, and the backward's scratch.
    // Forward-only models keep each layer's input alone (the recomputation layout).
    const ActivationSpec spec{c, s.precision, training(s) ? s.recompute : Recompute::layer};
    std::vector<Shape> shapes;
    Shape backward{0, 0};
    if (s.run == PlanRun::rpt) {
        const RptShapes r = rpt_shapes(s);
        shapes = {r.prefill, r.update};
        backward = r.update;
        m.kv_cache = KvCache::total_bytes(
            c, {r.contexts, s.rollouts, std::max(1, s.prompt_tokens), std::max(1, s.max_new_tokens), s.kv_dtype,
                s.precision, std::max(0, s.kv_block_tokens)},
            s.device);
        if (s.kl_reference) {
            // A forward-only model of the same precision over the update's batches.
            const ActivationSpec frozen{c, s.precision, Recompute::layer};
            m.reference = size_t(P) * sizeof(float) + (bf16 ? size_t(P) * sizeof(uint16_t) : 0) +
                          activation_bytes(frozen, r.update.rows, r.update.T);
        }
    } else {
        const Shape local{std::max(1, s.batch / N), s.seq};
        shapes = {local, {s.eval_rows, s.seq}};
        if (training(s)) backward = local;
    }
    const ForwardBytes forward = largest_forward(c, spec, shapes);
    m.logits = forward.logits;
    m.activations = forward.total - forward.logits;
    if (backward.rows > 0) m.backward_scratch = backward_scratch_bytes(spec, backward.rows, backward.T);
    m.workspace = s.device == DeviceKind::cuda ? kCublasWorkspaceBytes : 0;
    return m;
}

std::vector<std::string> plan_lines(const ModelConfig& c, const PlanSettings& s, const MemoryPlan& m) {
    std::vector<std::string> lines;
    const std::string zero = s.zero == 0   ? "no ZeRO"
                             : s.zero == 1 ? "ZeRO-1"
                             : s.zero == 2 ? "ZeRO-2"
                                           : "ZeRO-3 (the parameter buffer stays whole)";
    lines.push_back(fmt::format("plan: {} on {}, {} rank{}, {}, {}, recompute {}, {:.2f}M parameters", run_name(s.run),
                                device_name(s.device), s.ranks, s.ranks == 1 ? "" : "s", precision_name(s.precision),
                                zero, recompute_name(s.recompute), double(ParameterLayout(c).total()) * 1e-6));
    if (s.run == PlanRun::rpt) {
        const RptShapes r = rpt_shapes(s);
        lines.push_back(fmt::format("plan: {} contexts x {} rollouts per step ({} contexts per rank), prompts of up to {} "
                                    "tokens + {} new; GRPO micro-batch {} x {} tokens ({} prompt){}",
                                    s.contexts, s.rollouts, r.contexts, s.prompt_tokens, s.max_new_tokens,
                                    r.update.rows, r.update.T, s.shared_prompt ? "shared" : "per response",
                                    s.kl_reference ? ", KL reference" : ""));
    } else {
        lines.push_back(fmt::format("plan: batch {} x {} tokens ({} rows per rank){}", s.batch, s.seq,
                                    std::max(1, s.batch / std::max(1, s.ranks)),
                                    training(s) && s.eval_rows > 0 ? fmt::format(", evaluation {} rows", s.eval_rows)
                                                                   : ""));
    }
    lines.push_back(fmt::format("plan per rank: parameters {}{}, gradients {}, optimizer {}{}, activations {}, "
                                "logits chunk {}, backward scratch {}, KV cache {}{}, workspace {}",
                                mib(m.parameters), m.working ? fmt::format(" + bf16 copy {}", mib(m.working)) : "",
                                mib(m.gradients), mib(m.optimizer),
                                m.reference ? fmt::format(", KL reference {}", mib(m.reference)) : "",
                                mib(m.activations), mib(m.logits), mib(m.backward_scratch), mib(m.kv_cache),
                                s.run == PlanRun::rpt && s.kv_block_tokens > 0
                                    ? fmt::format(" at most (every rollout at max length; its blocks of {} tokens "
                                                  "follow the live tokens)",
                                                  s.kv_block_tokens)
                                    : "",
                                mib(m.workspace)));
    std::string total = fmt::format("plan: total {} per rank", mib(m.total()));
    if (s.device_memory > 0)
        total += m.total() <= s.device_memory ? fmt::format(": fits in {}", mib(s.device_memory))
                                              : fmt::format(": does NOT fit in {}", mib(s.device_memory));
    lines.push_back(total);
    return lines;
}

std::vector<std::string> fitting_suggestions(const ModelConfig& c, const PlanSettings& s) {
    if (s.device_memory == 0 || plan_memory(c, s).total() <= s.device_memory) return {};
    // Each candidate changes the settings the way its flag would.
    struct Candidate {
        std::string flag;
        std::function<void(PlanSettings&)> change;
    };
    std::vector<Candidate> candidates;
    if (training(s) && s.recompute == Recompute::none)
        candidates.push_back({"--recompute layer", [](PlanSettings& t) { t.recompute = Recompute::layer; }});
    if (training(s) && s.zero == 0 && s.ranks > 1)
        candidates.push_back({"--zero", [](PlanSettings& t) { t.zero = 1; }});
    if (training(s) && s.zero < 2 && s.ranks > 1)
        candidates.push_back({"--zero 2", [](PlanSettings& t) { t.zero = 2; }});
    if (s.run == PlanRun::rpt) {
        if (s.micro_batch_rows > 1)
            candidates.push_back({fmt::format("--micro-batch {}", std::max(1, s.micro_batch_rows / 2)),
                                  [](PlanSettings& t) { t.micro_batch_rows = std::max(1, t.micro_batch_rows / 2); }});
        if (resolve_kv_dtype(s.kv_dtype, s.device) == DType::f32)
            candidates.push_back({"--kv-dtype bf16", [](PlanSettings& t) { t.kv_dtype = KvDType::bf16; }});
        if (s.contexts > s.ranks)
            candidates.push_back({fmt::format("--contexts {}", std::max(s.ranks, s.contexts / 2)),
                                  [](PlanSettings& t) { t.contexts = std::max(t.ranks, t.contexts / 2); }});
    } else if (s.batch > s.ranks) {
        candidates.push_back({fmt::format("--batch {} (and --grad-accum to keep the step)", std::max(s.ranks, s.batch / 2)),
                              [](PlanSettings& t) { t.batch = std::max(t.ranks, t.batch / 2); }});
    }
    if (training(s))  // last: more ranks shard the moments (ZeRO-1) and split the batch
        candidates.push_back({fmt::format("{} ranks with --zero", s.ranks * 2), [](PlanSettings& t) {
                                  t.ranks *= 2;
                                  t.zero = std::max(t.zero, 1);
                              }});
    std::vector<std::string> lines;
    for (const Candidate& cand : candidates) {
        PlanSettings t = s;
        cand.change(t);
        const size_t total = plan_memory(c, t).total();
        if (total <= s.device_memory) lines.push_back(fmt::format("plan: fits with {} ({})", cand.flag, mib(total)));
    }
    if (!lines.empty() || candidates.empty()) return lines;
    // None alone: all of them together.
    PlanSettings all = s;
    std::string flags;
    for (const Candidate& cand : candidates) {
        cand.change(all);
        flags += (flags.empty() ? "" : ", ") + cand.flag;
    }
    const size_t total = plan_memory(c, all).total();
    lines.push_back(total <= s.device_memory
                        ? fmt::format("plan: fits with all of {} ({})", flags, mib(total))
                        : fmt::format("plan: does not fit even with all of {} ({}): more ranks or a larger device", flags,
                                      mib(total)));
    return lines;
}

}  // namespace rpt
