// worked_traces: recognising computed values and writing their scratchpads (see
// worked_traces.h). Amounts are integers or money in cents, so every step is exact.
#include "rl/worked_traces.h"

#include "rl/column_methods.h"

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
//
// Written in the corpus's own words and spacing ("tens: 4 + 6 = 10, write 0 carry 1."),
// the way its column-method documents work a sum: the trace then reuses what the model
// learned from those documents instead of a notation it has seen only in traces.

using columns::digit_at;
using columns::kPlaceCount;
using columns::num_digits;
using columns::pow10;

template <typename... Args>
void put(std::string& out, fmt::format_string<Args...> f, Args&&... args) {
    fmt::format_to(std::back_inserter(out), f, std::forward<Args>(args)...);
}

// x times a number of several digits: one partial product per digit, then their running
// sum (synth_corpus's multiplication by a multi-digit number).
void multiply_by_parts(int64_t x, int64_t y, std::string& out) {
    int parts = 0;
    for (int p = 0; p < num_digits(y); ++p) parts += digit_at(y, p) != 0;
    if (parts == 1) return;  // y = d * 10^k: the step's own "So" line says it all
    int64_t total = -1;
    for (int p = 0; p < num_digits(y); ++p) {
        const int64_t part = digit_at(y, p) * pow10(p);
        if (part == 0) continue;
        put(out, "{} * {} = {}.\n", x, part, x * part);
        if (total >= 0) put(out, "Running sum: {} + {} = {}.\n", total, x * part, total + x * part);
        total = std::max<int64_t>(total, 0) + x * part;
    }
}

// The worked columns of one step on its plain numbers (cents for money); false when the
// numbers are too long for the corpus's place names.
bool write_columns(const Step& s, std::string& out) {
    const int64_t a = s.a.value, b = s.b.value;
    switch (s.op) {
        case '+':
            if (std::max(num_digits(a), num_digits(b)) >= kPlaceCount) return false;
            columns::add(a, b, out);
            return true;
        case '-':
            if (num_digits(a) > kPlaceCount) return false;
            columns::subtract(a, b, out);
            return true;
        case '*': {
            const int64_t big = std::max(a, b), small = std::min(a, b);
            if (small >= 10) {
                multiply_by_parts(big, small, out);
            } else {
                if (num_digits(big) > kPlaceCount) return false;
                columns::multiply_by_digit(big, int(small), out);
            }
            return true;
        }
        default:  // '/': a power of ten only drops zeros
            if (b != pow10(num_digits(b) - 1)) columns::long_division(a, b, out);
            return true;
    }
}

// One step: its columns when `fine`, then "So a op b = r." (for money, first the same
// on cents, which is what the columns added up).
bool write_step(const Step& s, bool fine, std::string& out) {
    const bool money = s.a.money || s.b.money;
    if (fine) {
        if (!write_columns(s, out)) return false;
        const int64_t big = std::max(s.a.value, s.b.value), small = std::min(s.a.value, s.b.value);
        if (money && s.op == '*') put(out, "So {} * {} = {}.\n", big, small, s.result.value);
        else if (money) put(out, "So {} {} {} = {}.\n", s.a.value, s.op, s.b.value, s.result.value);
    }
    put(out, "So {} {} {} = {}.\n", format_amount(s.a), s.op, format_amount(s.b), format_amount(s.result));
    return true;
}

std::optional<std::string> write_steps(const std::vector<Step>& steps, bool fine) {
    std::string out;
    for (const Step& s : steps)
        if (!write_step(s, fine, out)) return std::nullopt;
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
        const std::optional<std::string> trace = write_steps(*steps, fine);
        if (trace && trace->size() <= max_chars) return *trace;
    }
    return "";
}

namespace {

// `text` with single spaces between words and around every operator and '=', so that
// "3+8=11" and "tens: 3 + 8 = 11, write" read alike.
std::string spaced(std::string_view text) {
    std::string out;
    for (const char c : text) {
        const bool op = c == '+' || c == '-' || c == '*' || c == '/' || c == '=';
        if (op || c == ' ') {
            if (!out.empty() && out.back() != ' ') out += ' ';
            if (!op) continue;
            out += c;
            out += ' ';
        } else {
            out += c;
        }
    }
    return out;
}

// The amount a claimed result starts with: "11," "$7.50." "582" (one trailing ',' or '.').
std::optional<Amount> claimed_amount(std::string_view rest) {
    std::string_view word = rest.substr(0, std::min(rest.find(' '), rest.size()));
    if (!word.empty() && (word.back() == ',' || word.back() == '.')) word.remove_suffix(1);
    return parse_amount(word);
}

// Checks one equation "... <expression> = <amount>..." whose '=' is at `eq` of `line`.
void check_equation(const std::string& line, size_t eq, TraceCheck& check) {
    const std::optional<Expression> e = trailing_expression(std::string_view(line).substr(0, eq == 0 ? 0 : eq - 1));
    const std::optional<Amount> claimed = claimed_amount(std::string_view(line).substr(std::min(eq + 2, line.size())));
    if (!e || !claimed) return;
    ++check.equations;
    const std::optional<std::vector<Step>> steps = evaluate(e->operands, e->ops);
    if (steps && steps->back().result.value == claimed->value && steps->back().result.money == claimed->money)
        ++check.correct;
}

}  // namespace

TraceCheck check_trace(std::string_view trace) {
    TraceCheck check;
    size_t begin = 0;
    while (begin < trace.size()) {
        const size_t end = std::min(trace.find('\n', begin), trace.size());
        const std::string line = spaced(trace.substr(begin, end - begin));
        begin = end + 1;
        for (size_t eq = line.find('='); eq != std::string::npos; eq = line.find('=', eq + 1))
            check_equation(line, eq, check);
    }
    return check;
}

}  // namespace rpt
