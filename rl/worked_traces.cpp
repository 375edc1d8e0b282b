// worked_traces: recognising computed values and writing their scratchpads (see
// worked_traces.h). Amounts are integers or money in cents, so every step is exact.
#include "rl/worked_traces.h"

#include <algorithm>
#include <iterator>
#include <vector>

#include <fmt/format.h>

namespace rpt {
namespace {

// ---------------------------------------------------------------- amounts

struct Amount {
    int64_t value = 0;   // cents when money
    bool money = false;
};

constexpr int64_t kMaxAmount = int64_t(1) << 50;  // far above any corpus number; no overflow in a product

std::string format_amount(Amount a) {
    if (!a.money) return fmt::format("{}", a.value);
    return fmt::format("${}.{:02d}", a.value / 100, a.value % 100);
}

bool all_digits(std::string_view s) {
    return !s.empty() && s.size() <= 15 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

int64_t to_int(std::string_view digits) {
    int64_t v = 0;
    for (char c : digits) v = v * 10 + (c - '0');
    return v;
}

// "42" or "$3.75"; nullopt for anything else.
std::optional<Amount> parse_amount(std::string_view word) {
    if (all_digits(word)) return Amount{to_int(word), false};
    if (word.size() < 5 || word[0] != '$') return std::nullopt;
    const size_t dot = word.find('.');
    if (dot == std::string_view::npos || word.size() - dot != 3) return std::nullopt;
    const std::string_view whole = word.substr(1, dot - 1), cents = word.substr(dot + 1);
    if (!all_digits(whole) || !all_digits(cents)) return std::nullopt;
    return Amount{to_int(whole) * 100 + to_int(cents), true};
}

bool is_op(std::string_view w) { return w == "+" || w == "-" || w == "*" || w == "/"; }

// ---------------------------------------------------------------- evaluation

// One binary operation of an evaluation, in the order it is done.
struct Step {
    Amount a;
    char op = '+';
    Amount b;
    Amount result;
};

// a op b, exactly: money only where it means something (money +- money, money */ count),
// division only when it leaves no remainder, no negative or oversized results.
std::optional<Amount> apply(Amount a, char op, Amount b) {
    Amount r;
    switch (op) {
        case '+':
        case '-':
            if (a.money != b.money) return std::nullopt;
            r = {op == '+' ? a.value + b.value : a.value - b.value, a.money};
            break;
        case '*':
            // A model's trace can hold any numbers: refuse a product past kMaxAmount
            // before it overflows.
            if ((a.money && b.money) || (b.value != 0 && a.value > kMaxAmount / b.value)) return std::nullopt;
            r = {a.value * b.value, a.money || b.money};
            break;
        default:  // '/'
            if (b.money || b.value == 0 || a.value % b.value != 0) return std::nullopt;
            r = {a.value / b.value, a.money};
            break;
    }
    if (r.value < 0 || r.value > kMaxAmount) return std::nullopt;
    return r;
}

// Evaluates operands[0] ops[0] operands[1] ... with * and / before + and -, each level
// left to right; the steps in the order done.
std::optional<std::vector<Step>> evaluate(std::vector<Amount> operands, std::vector<char> ops) {
    std::vector<Step> steps;
    for (const bool multiplicative : {true, false}) {
        for (size_t i = 0; i < ops.size();) {
            if ((ops[i] == '*' || ops[i] == '/') != multiplicative) {
                ++i;
                continue;
            }
            const std::optional<Amount> r = apply(operands[i], ops[i], operands[i + 1]);
            if (!r) return std::nullopt;
            steps.push_back({operands[i], ops[i], operands[i + 1], *r});
            operands[i] = *r;
            operands.erase(operands.begin() + int64_t(i) + 1);
            ops.erase(ops.begin() + int64_t(i));
        }
    }
    if (steps.empty()) return std::nullopt;
    return steps;
}

// Splits on single spaces.
std::vector<std::string_view> words_of(std::string_view s) {
    std::vector<std::string_view> words;
    size_t begin = 0;
    while (begin <= s.size()) {
        const size_t end = std::min(s.find(' ', begin), s.size());
        words.push_back(s.substr(begin, end - begin));
        begin = end + 1;
    }
    return words;
}

// The longest "amount (op amount)*" that ends `text`, words separated by single spaces.
struct Expression {
    std::vector<Amount> operands;
    std::vector<char> ops;
    std::string text;
};
std::optional<Expression> trailing_expression(std::string_view text) {
    const std::vector<std::string_view> words = words_of(text);
    size_t first = words.size();
    if (first == 0 || !parse_amount(words[first - 1])) return std::nullopt;
    --first;
    while (first >= 2 && is_op(words[first - 1]) && parse_amount(words[first - 2]) &&
           int(words.size() - first + 2) / 2 + 1 <= kMaxOperands)
        first -= 2;
    if (first + 1 == words.size()) return std::nullopt;  // a lone amount: nothing to compute
    Expression e;
    for (size_t i = first; i < words.size(); ++i) {
        if ((i - first) % 2 == 0) e.operands.push_back(*parse_amount(words[i]));
        else e.ops.push_back(words[i][0]);
        if (i > first) e.text += ' ';
        e.text += words[i];
    }
    return e;
}

// ---------------------------------------------------------------- scratchpads

int digit_count(int64_t x) {
    int d = 1;
    while (x >= 10) x /= 10, ++d;
    return d;
}
int digit_at(int64_t x, int place) {
    while (place-- > 0) x /= 10;
    return int(x % 10);
}
int64_t pow10(int p) {
    int64_t v = 1;
    while (p-- > 0) v *= 10;
    return v;
}

template <typename... Args>
void line(std::string& out, fmt::format_string<Args...> f, Args&&... args) {
    fmt::format_to(std::back_inserter(out), f, std::forward<Args>(args)...);
    out += '\n';
}

// Column addition from the right; a column with one digit and no carry is just written.
void add_columns(int64_t x, int64_t y, std::string& out) {
    int carry = 0;
    for (int p = 0; p < std::max(digit_count(x), digit_count(y)); ++p) {
        std::string terms;
        int sum = carry, n_terms = carry ? 1 : 0;
        for (const int64_t v : {x, y}) {
            if (p >= digit_count(v)) continue;
            const int d = digit_at(v, p);
            terms += terms.empty() ? fmt::format("{}", d) : fmt::format("+{}", d);
            sum += d;
            ++n_terms;
        }
        if (carry) terms += "+1";
        if (n_terms == 1) line(out, "{}", sum);
        else line(out, "{}={}", terms, sum);
        carry = sum / 10;
    }
}

// Column subtraction (x >= y) from the right: a borrowing column shows its top digit
// plus ten, and the next column pays the borrow as "-1".
void subtract_columns(int64_t x, int64_t y, std::string& out) {
    int borrow = 0;
    for (int p = 0; p < digit_count(x); ++p) {
        const int top = digit_at(x, p), below = p < digit_count(y) ? digit_at(y, p) : 0;
        const int v = top - below - borrow;
        const int shown_top = v < 0 ? top + 10 : top;
        std::string terms = fmt::format("{}", shown_top);
        if (p < digit_count(y)) terms += fmt::format("-{}", below);
        if (borrow) terms += "-1";
        if (terms == fmt::format("{}", shown_top)) line(out, "{}", shown_top);
        else line(out, "{}={}", terms, v < 0 ? v + 10 : v);
        borrow = v < 0;
    }
}

// x times one digit, from the right with carries; the last column writes all of it.
void multiply_columns(int64_t x, int digit, std::string& out) {
    int carry = 0;
    for (int p = 0; p < digit_count(x); ++p) {
        const int v = digit_at(x, p) * digit + carry;
        if (carry) line(out, "{}*{}+{}={}", digit_at(x, p), digit, carry, v);
        else line(out, "{}*{}={}", digit_at(x, p), digit, v);
        carry = v / 10;
    }
}

// Long division by `d` (exact): leading digits until they reach d, then one line per
// digit of the quotient with its remainder brought down.
void divide_columns(int64_t x, int64_t d, std::string& out) {
    int p = digit_count(x) - 1;
    int64_t cur = digit_at(x, p);
    while (cur < d && p > 0) cur = cur * 10 + digit_at(x, --p);
    for (;;) {
        line(out, "{}/{}={} r{}", cur, d, cur / d, cur % d);
        if (p == 0) break;
        cur = (cur % d) * 10 + digit_at(x, --p);
    }
}

// One step's scratchpad; `fine` writes columns, coarse only the partial results.
void write_step(const Step& s, bool fine, std::string& out) {
    const int64_t a = s.a.value, b = s.b.value;
    switch (s.op) {
        case '+':
            if (fine) add_columns(a, b, out);
            break;
        case '-':
            if (fine) subtract_columns(a, b, out);
            break;
        case '*': {
            const int64_t big = std::max(a, b), small = std::min(a, b);
            if (small < 10) {
                if (fine) multiply_columns(big, int(small), out);
                break;
            }
            int64_t total = -1;  // partial products by place, then their running sum
            for (int p = 0; p < digit_count(small); ++p) {
                const int d = digit_at(small, p);
                if (d == 0) continue;
                if (fine) multiply_columns(big, d, out);
                const int64_t partial = big * d * pow10(p);
                line(out, "{}*{}={}", big, d * pow10(p), partial);
                if (total >= 0) {
                    if (fine) add_columns(total, partial, out);
                    line(out, "{}+{}={}", total, partial, total + partial);
                }
                total = std::max<int64_t>(total, 0) + partial;
            }
            break;
        }
        default:  // '/': powers of ten drop zeros, no columns needed
            if (fine && b != pow10(digit_count(b) - 1)) divide_columns(a, b, out);
            break;
    }
    line(out, "{}{}{}={}", format_amount(s.a), s.op, format_amount(s.b), format_amount(s.result));
}

std::string write_steps(const std::vector<Step>& steps, bool fine) {
    std::string out;
    for (const Step& s : steps) write_step(s, fine, out);
    return out;
}

bool single_digits_only(const std::vector<Step>& steps) {
    for (const Step& s : steps)
        if (s.a.money || s.b.money || s.a.value >= 10 || s.b.value >= 10) return false;
    return true;
}

std::optional<std::vector<Step>> steps_of(std::string_view expression) {
    const std::optional<Expression> e = trailing_expression(expression);
    if (!e || e->text.size() != expression.size()) return std::nullopt;
    return evaluate(e->operands, e->ops);
}

}  // namespace

std::optional<ComputedValue> computed_value_at(std::string_view prefix) {
    const std::string_view current_line = prefix.substr(prefix.rfind('\n') == std::string_view::npos
                                                            ? 0 : prefix.rfind('\n') + 1);
    const size_t eq = current_line.rfind(" = ");
    if (eq == std::string_view::npos) return std::nullopt;
    const std::string_view written = current_line.substr(eq + 3);
    const std::optional<Expression> e = trailing_expression(current_line.substr(0, eq));
    if (!e) return std::nullopt;
    const std::optional<std::vector<Step>> steps = evaluate(e->operands, e->ops);
    if (!steps) return std::nullopt;
    const std::string result = format_amount(steps->back().result);
    if (written.size() >= result.size() || result.compare(0, written.size(), written) != 0) return std::nullopt;
    return ComputedValue{e->text, result, result.substr(written.size())};
}

std::string worked_trace(const ComputedValue& value, size_t max_chars) {
    const std::optional<std::vector<Step>> steps = steps_of(value.expression);
    if (!steps || single_digits_only(*steps)) return "";
    for (const bool fine : {true, false}) {
        std::string trace = write_steps(*steps, fine);
        if (trace.size() <= max_chars) return trace;
    }
    return "";
}

TraceCheck check_trace(std::string_view trace) {
    TraceCheck check;
    size_t begin = 0;
    while (begin < trace.size()) {
        const size_t end = std::min(trace.find('\n', begin), trace.size());
        const std::string_view text = trace.substr(begin, end - begin);
        begin = end + 1;
        const size_t eq = text.find('=');
        if (eq == std::string_view::npos) continue;
        ++check.equations;
        // "lhs=result" or, for a long-division line, "a/b=q rR".
        std::string_view rhs = text.substr(eq + 1), remainder;
        while (!rhs.empty() && rhs.front() == ' ') rhs.remove_prefix(1);
        while (!rhs.empty() && rhs.back() == ' ') rhs.remove_suffix(1);
        if (const size_t r = rhs.find(" r"); r != std::string_view::npos) {
            remainder = rhs.substr(r + 2);
            rhs = rhs.substr(0, r);
        }
        // Spaces around operators are optional in a model's trace.
        std::string lhs;
        for (char c : text.substr(0, eq)) {
            if (c == ' ') continue;
            if (c == '+' || c == '-' || c == '*' || c == '/') lhs += fmt::format(" {} ", c);
            else lhs += c;
        }
        const std::optional<Expression> e = trailing_expression(lhs);
        const std::optional<Amount> claimed = parse_amount(rhs);
        if (!e || e->text.size() != lhs.size() || !claimed) continue;
        if (!remainder.empty()) {  // floor division with remainder
            const std::optional<Amount> rem = parse_amount(remainder);
            if (rem && e->ops.size() == 1 && e->ops[0] == '/' && e->operands[1].value > 0 && !claimed->money &&
                !e->operands[0].money && !e->operands[1].money &&
                e->operands[0].value / e->operands[1].value == claimed->value &&
                e->operands[0].value % e->operands[1].value == rem->value)
                ++check.correct;
            continue;
        }
        const std::optional<std::vector<Step>> steps = evaluate(e->operands, e->ops);
        if (steps && steps->back().result.value == claimed->value && steps->back().result.money == claimed->money)
            ++check.correct;
    }
    return check;
}

}  // namespace rpt
