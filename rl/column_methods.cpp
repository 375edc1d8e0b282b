// column_methods: the corpus's column methods (see column_methods.h).
#include "rl/column_methods.h"

#include <algorithm>

#include <fmt/format.h>

namespace rpt::columns {
namespace {

template <typename... Args>
void put(std::string& out, fmt::format_string<Args...> f, Args&&... args) {
    fmt::format_to(std::back_inserter(out), f, std::forward<Args>(args)...);
}

}  // namespace

int64_t pow10(int d) {
    int64_t p = 1;
    while (d-- > 0) p *= 10;
    return p;
}

int digit_at(int64_t x, int place) { return static_cast<int>((x / pow10(place)) % 10); }

int num_digits(int64_t x) {
    int d = 1;
    while (x >= 10) x /= 10, d++;
    return d;
}

void add(int64_t a, int64_t b, std::string& out) {
    const int places = std::max(num_digits(a), num_digits(b));
    int carry = 0;
    for (int p = 0; p < places; p++) {
        const bool has_a = p < num_digits(a), has_b = p < num_digits(b);
        const int da = digit_at(a, p), db = digit_at(b, p);
        const int s = da + db + carry;
        put(out, "{}: ", kPlaces[p]);
        if (has_a && has_b && carry) put(out, "{} + {} + {} = {}", da, db, carry, s);
        else if (has_a && has_b) put(out, "{} + {} = {}", da, db, s);
        else if (carry) put(out, "{} + {} = {}", has_a ? da : db, carry, s);
        else put(out, "{}", s);
        carry = s / 10;
        put(out, carry ? ", write {} carry 1.\n" : ", write {}.\n", s % 10);
    }
    if (carry) put(out, "{}: write the carry 1.\n", kPlaces[places]);
}

void subtract(int64_t a, int64_t b, std::string& out) {
    int borrow = 0;
    for (int p = 0; p < num_digits(a); p++) {
        const int da = digit_at(a, p), db = p < num_digits(b) ? digit_at(b, p) : 0;
        int top = da, next_borrow = 0;
        put(out, "{}: ", kPlaces[p]);
        if (borrow) {
            if (da >= 1) {
                top = da - 1;
                put(out, "{} - 1 = {} after the borrow, ", da, top);
            } else {  // 0 with a pending borrow: borrow again from the next column
                top = 9;
                next_borrow = 1;
                put(out, "0 needs a borrow, 10 - 1 = {}, ", top);
            }
        }
        if (top < db) {
            next_borrow = 1;
            put(out, "{} < {} so borrow, {} - {} = {}.\n", top, db, top + 10, db, top + 10 - db);
        } else {
            put(out, "{} - {} = {}.\n", top, db, top - db);
        }
        borrow = next_borrow;
    }
}

void multiply_by_digit(int64_t a, int digit, std::string& out) {
    int64_t carry = 0;
    for (int p = 0; p < num_digits(a); p++) {
        const int64_t v = digit_at(a, p) * digit + carry;
        if (carry) put(out, "{}: {} * {} + {} = {}", kPlaces[p], digit_at(a, p), digit, carry, v);
        else put(out, "{}: {} * {} = {}", kPlaces[p], digit_at(a, p), digit, v);
        carry = v / 10;
        if (p + 1 == num_digits(a)) put(out, ", write {}.\n", v);
        else if (carry) put(out, ", write {} carry {}.\n", v % 10, carry);
        else put(out, ", write {}.\n", v % 10);
    }
}

void long_division(int64_t a, int64_t d, std::string& out) {
    const int nd = num_digits(a);
    int p = nd - 1;
    int64_t cur = digit_at(a, p);
    while (cur < d && p > 0) cur = cur * 10 + digit_at(a, --p);
    if (p < nd - 1) put(out, "{} is too small, so start with {}.\n", cur / 10, cur);
    for (;;) {
        const int64_t q = cur / d, rem = cur - q * d;
        if (q == 0) put(out, "{} is less than {}, write 0.\n", cur, d);
        else put(out, "{} into {} goes {} times: {} * {} = {}, {} - {} = {}.\n", d, cur, q, q, d, q * d, cur, q * d, rem);
        if (p == 0) break;
        cur = rem * 10 + digit_at(a, --p);
        put(out, "Bring down the {} to make {}.\n", digit_at(a, p), cur);
    }
}

}  // namespace rpt::columns
