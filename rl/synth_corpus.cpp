// synth_corpus: generator of arithmetic documents with worked solutions (see
// synth_corpus.h). Each problem family is one function that draws its numbers from
// the document's RNG, then writes the problem and every intermediate step. All
// arithmetic is on integers (money in cents), so every printed equation is exact.
#include "rl/synth_corpus.h"

#include "rl/column_methods.h"

#include <algorithm>
#include <iterator>
#include <numeric>
#include <stdexcept>

#include <fmt/format.h>

namespace rpt {

namespace {

// ---------------------------------------------------------------- randomness

uint64_t mix64(uint64_t z) {  // splitmix64 finaliser
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// splitmix64 stream whose start depends on (seed, index) only: no shared state.
class Rng {
 public:
  Rng(uint64_t seed, uint64_t index) : state_(mix64(seed ^ mix64(index + kGolden)) ^ kGolden) {}
  uint64_t next() { return mix64(state_ += kGolden); }
  // Uniform in [0, n) via the high half of a 128-bit product (no modulo bias worth noting).
  uint64_t below(uint64_t n) { return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64); }
  int64_t range(int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(below(static_cast<uint64_t>(hi - lo + 1))); }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  bool coin() { return next() & 1; }
  template <typename T, size_t N>
  const T& pick(const T (&items)[N]) { return items[below(N)]; }

 private:
  static constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;
  uint64_t state_;
};

// ---------------------------------------------------------------- text helpers

struct Person {
  const char* name;
  const char* pronoun;  // mid-sentence: "he" / "she"
  const char* Pronoun;  // sentence start: "He" / "She"
};
constexpr Person kPeople[] = {
    {"Mia", "she", "She"},   {"Liam", "he", "He"},   {"Ava", "she", "She"},    {"Noah", "he", "He"},
    {"Zoe", "she", "She"},   {"Omar", "he", "He"},   {"Priya", "she", "She"},  {"Kenji", "he", "He"},
    {"Elena", "she", "She"}, {"Samuel", "he", "He"}, {"Fatima", "she", "She"}, {"Lucas", "he", "He"},
    {"Grace", "she", "She"}, {"Diego", "he", "He"},  {"Hannah", "she", "She"}, {"Tomas", "he", "He"},
};
using columns::kPlaces;
constexpr const char* kDays[] = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"};

template <typename... Args>
void put(std::string& out, fmt::format_string<Args...> f, Args&&... args) {
  fmt::format_to(std::back_inserter(out), f, std::forward<Args>(args)...);
}

std::string money(int64_t cents) { return fmt::format("${}.{:02d}", cents / 100, cents % 100); }

using columns::digit_at;
using columns::num_digits;
using columns::pow10;

// A number with exactly `digits` digits; single digits avoid 0 and 1 (trivial steps).
int64_t number(Rng& rng, int digits) {
  if (digits <= 1) return rng.range(2, 9);
  return rng.range(pow10(digits - 1), pow10(digits) - 1);
}

// Difficulty level 0/1/2 -> operand digit count: easy 1-2, medium 2-3, hard 3-4.
int operand_digits(Rng& rng, int level) { return level + 1 + static_cast<int>(rng.below(2)); }

// ---------------------------------------------------------------- problem kinds
// Each writes "Problem: ...\nSolution: ...\n" and returns the answer text.

std::string addition(Rng& rng, int level, std::string& out) {
  const int64_t a = number(rng, operand_digits(rng, level)), b = number(rng, operand_digits(rng, level));
  const int64_t sum = a + b;
  switch (rng.below(4)) {
    case 0: put(out, "Problem: Add {} and {}.\n", a, b); break;
    case 1: put(out, "Problem: What is {} + {}?\n", a, b); break;
    case 2: put(out, "Problem: Find the sum of {} and {} using column addition.\n", a, b); break;
    default: put(out, "Problem: Compute {} plus {}, column by column.\n", a, b); break;
  }
  put(out, "Solution: Line up the digits by place value and add from the right.\n");
  columns::add(a, b, out);
  put(out, "So {} + {} = {}.\nCheck: {} - {} = {}.\n", a, b, sum, sum, b, a);
  return fmt::format("{}", sum);
}

std::string subtraction(Rng& rng, int level, std::string& out) {
  int64_t a = number(rng, operand_digits(rng, level)), b = number(rng, operand_digits(rng, level));
  if (a < b) std::swap(a, b);
  if (a == b) a += rng.range(1, 9);
  const int64_t diff = a - b;
  switch (rng.below(4)) {
    case 0: put(out, "Problem: Subtract {} from {}.\n", b, a); break;
    case 1: put(out, "Problem: What is {} - {}?\n", a, b); break;
    case 2: put(out, "Problem: Find the difference between {} and {}.\n", a, b); break;
    default: put(out, "Problem: Compute {} minus {} with column subtraction.\n", a, b); break;
  }
  put(out, "Solution: Subtract column by column from the right, borrowing when needed.\n");
  columns::subtract(a, b, out);
  put(out, "So {} - {} = {}.\nCheck: {} + {} = {}.\n", a, b, diff, diff, b, a);
  return fmt::format("{}", diff);
}

std::string multiplication(Rng& rng, int level, std::string& out) {
  const int64_t a = number(rng, operand_digits(rng, level));
  const int64_t b = number(rng, std::max(1, level + static_cast<int>(rng.below(2))));
  const int64_t product = a * b;
  switch (rng.below(3)) {
    case 0: put(out, "Problem: Multiply {} by {}.\n", a, b); break;
    case 1: put(out, "Problem: What is {} * {}?\n", a, b); break;
    default: put(out, "Problem: Find the product of {} and {}.\n", a, b); break;
  }
  if (b < 10) {  // one digit: multiply digit by digit with carries
    put(out, "Solution: Multiply each digit of {} by {} from the right.\n", a, b);
    columns::multiply_by_digit(a, static_cast<int>(b), out);
  } else {  // several digits: one partial product per digit, then add them up
    put(out, "Solution: Split {} by place value and multiply {} by each part.\n", b, a);
    int64_t total = -1;
    for (int p = 0; p < num_digits(b); p++) {
      const int64_t part = digit_at(b, p) * pow10(p);
      if (part == 0) {
        put(out, "The {} digit of {} is 0, so it adds nothing.\n", kPlaces[p], b);
        continue;
      }
      const int64_t partial = a * part;
      put(out, "{} * {} = {}.\n", a, part, partial);
      if (total >= 0) put(out, "Running sum: {} + {} = {}.\n", total, partial, total + partial);
      total = std::max<int64_t>(total, 0) + partial;
    }
  }
  put(out, "So {} * {} = {}.\nCheck: {} / {} = {}.\n", a, b, product, product, b, a);
  return fmt::format("{}", product);
}

std::string division(Rng& rng, int level, std::string& out) {
  const int64_t divisor = level < 2 ? rng.range(3, 9) : rng.range(11, 29);
  const int64_t dividend = std::max<int64_t>(number(rng, level + 2 + static_cast<int>(rng.below(2))), divisor * 3);
  const int64_t q = dividend / divisor, r = dividend % divisor;
  const Person& who = rng.pick(kPeople);
  constexpr const char* kThings[] = {"marbles", "stickers", "apples", "pencils", "cards", "coins", "seeds", "beads"};
  const char* thing = rng.pick(kThings);
  const bool ask_left = rng.coin();
  switch (rng.below(3)) {
    case 0:
      put(out, "Problem: {} shares {} {} equally among {} friends. ", who.name, dividend, thing, divisor);
      put(out, ask_left ? "How many {} are left over?\n" : "How many {} does each friend get?\n", thing);
      break;
    case 1:
      put(out, "Problem: {} {} are packed into bags of {}. ", dividend, thing, divisor);
      put(out, ask_left ? "How many {} do not fill a whole bag?\n" : "How many full bags of {} are there?\n", thing);
      break;
    default:
      put(out, "Problem: Divide {} by {}. What is the {}?\n", dividend, divisor, ask_left ? "remainder" : "quotient");
      break;
  }
  put(out, "Solution: Use long division of {} by {}.\n", dividend, divisor);
  columns::long_division(dividend, divisor, out);
  put(out, "So {} = {} * {} + {}.\n", dividend, divisor, q, r);
  // End on the asked-for number so the answer is the result of the last step.
  if (ask_left) put(out, "Left over: {} - {} = {}.\n", dividend, divisor * q, r);
  else put(out, "Check: {} - {} = {}, and {} / {} = {}.\n", dividend, r, dividend - r, dividend - r, divisor, q);
  return fmt::format("{}", ask_left ? r : q);
}

std::string running_total(Rng& rng, int level, std::string& out) {
  const Person& who = rng.pick(kPeople);
  const int steps = 3 + static_cast<int>(rng.below(3));
  const int digits = std::min(level + 1 + static_cast<int>(rng.below(2)), 3);
  if (rng.coin()) {  // pure accumulation over days
    struct Activity {
      const char* verb;
      const char* item;
    };
    constexpr Activity kActivities[] = {{"collects", "eggs"}, {"finds", "shells"},   {"reads", "pages"},
                                        {"swims", "laps"},    {"picks", "berries"},  {"scores", "points"},
                                        {"sells", "cookies"}, {"folds", "cranes"}};
    const Activity& act = rng.pick(kActivities);
    const char *verb = act.verb, *item = act.item;
    if (rng.coin()) put(out, "Problem: {} {} {} every day this week: ", who.name, verb, item);
    else put(out, "Problem: Here is how many {} {} {} each day: ", item, who.name, verb);
    std::vector<int64_t> v(steps);
    for (int i = 0; i < steps; i++) {
      v[i] = number(rng, digits);
      put(out, "{}{} on {}", i == 0 ? "" : i + 1 == steps ? " and " : ", ", v[i], kDays[i]);
    }
    put(out, ". How many {} is that in total?\nSolution: Keep a running total.\n{}: {}.\n", item, kDays[0], v[0]);
    int64_t total = v[0];
    for (int i = 1; i < steps; i++) {
      put(out, "After {}: {} + {} = {}.\n", kDays[i], total, v[i], total + v[i]);
      total += v[i];
    }
    return fmt::format("{}", total);
  }
  // Passengers on a bus: people get on and off, never more off than aboard.
  int64_t aboard = number(rng, digits);
  put(out, "Problem: A bus leaves the depot with {} passengers.", aboard);
  std::string steps_text = fmt::format("Solution: Start with {}.\n", aboard);
  for (int i = 0; i < steps; i++) {
    const bool off = rng.coin() && aboard > 2;
    const int64_t n = off ? rng.range(1, aboard - 1) : number(rng, std::max(1, digits - 1));
    put(out, off ? " At stop {}, {} get off." : " At stop {}, {} get on.", i + 1, n);
    put(steps_text, "Stop {}: {} {} {} = {}.\n", i + 1, aboard, off ? '-' : '+', n, off ? aboard - n : aboard + n);
    aboard += off ? -n : n;
  }
  put(out, " How many passengers are on the bus now?\n{}", steps_text);
  return fmt::format("{}", aboard);
}

std::string shopping(Rng& rng, int level, std::string& out) {
  const Person& who = rng.pick(kPeople);
  constexpr const char* kGoods[] = {"notebooks", "pens", "apples", "candles", "mugs", "rulers", "soaps", "kites"};
  // Prices step in 5 cents for easy problems and 1 cent otherwise, and grow with level.
  const int64_t step = level == 0 ? 25 : level == 1 ? 5 : 1;
  const int64_t max_cents = level == 0 ? 500 : level == 1 ? 1500 : 4000;
  auto price = [&] { return step * rng.range(100 / step, max_cents / step); };
  const int64_t q1 = rng.range(2, 3 + 3 * level), p1 = price();
  const char* g1 = rng.pick(kGoods);
  if (rng.below(3) == 0) {  // unit price first, then a new quantity
    const int64_t q2 = q1 + rng.range(1, 6);
    put(out, "Problem: {} {} cost {} in total. How much do {} {} cost at the same price?\n", q1, g1,
        money(q1 * p1), q2, g1);
    put(out, "Solution: One costs {} / {} = {}.\n", money(q1 * p1), q1, money(p1));
    put(out, "Then {} * {} = {}.\n", q2, money(p1), money(q2 * p1));
    return money(q2 * p1);
  }
  const char* g2 = g1;
  while (g2 == g1) g2 = rng.pick(kGoods);
  const int64_t q2 = rng.range(1, 4), p2 = price();
  const int64_t c1 = q1 * p1, c2 = q2 * p2, total = c1 + c2;
  constexpr int64_t kBills[] = {500, 1000, 2000, 5000, 10000, 20000, 50000};
  // The smallest bill that covers the total; beyond the largest, whole hundreds.
  int64_t bill = (total / 10000 + 1) * 10000;
  for (int64_t b : kBills) {
    if (b >= total) {
      bill = b;
      break;
    }
  }
  if (rng.coin()) put(out, "Problem: {} buys {} {} at {} each and {} {} at {} each. ", who.name, q1, g1, money(p1), q2, g2, money(p2));
  else put(out, "Problem: At the market, {} {} cost {} each and {} {} cost {} each. {} buys both. ", q1, g1, money(p1), q2, g2, money(p2), who.name);
  put(out, "{} pays with {}. How much change does {} get?\n", who.Pronoun, money(bill), who.pronoun);
  put(out, "Solution: The {} cost {} * {} = {}.\n", g1, q1, money(p1), money(c1));
  put(out, "The {} cost {} * {} = {}.\n", g2, q2, money(p2), money(c2));
  put(out, "Together: {} + {} = {}.\nChange: {} - {} = {}.\n", money(c1), money(c2), money(total), money(bill),
      money(total), money(bill - total));
  return money(bill - total);
}

std::string rate(Rng& rng, int level, std::string& out) {
  const Person& who = rng.pick(kPeople);
  const int64_t speed = rng.range(3, 9 + 20 * level) * (level == 2 ? 1 : 5);
  switch (rng.below(3)) {
    case 0: {  // two legs at different speeds
      const int64_t s2 = rng.range(3, 9 + 20 * level) * (level == 2 ? 1 : 5);
      const int64_t h1 = rng.range(2, 6), h2 = rng.range(2, 6);
      put(out, "Problem: {} drives at {} km per hour for {} hours, then at {} km per hour for {} hours. "
          "How far does {} drive in all?\n", who.name, speed, h1, s2, h2, who.pronoun);
      put(out, "Solution: Distance is speed times time.\nFirst part: {} * {} = {} km.\n", speed, h1, speed * h1);
      put(out, "Second part: {} * {} = {} km.\nTotal: {} + {} = {} km.\n", s2, h2, s2 * h2, speed * h1, s2 * h2,
          speed * h1 + s2 * h2);
      return fmt::format("{}", speed * h1 + s2 * h2);
    }
    case 1: {  // remaining time for the rest of a trip
      const int64_t h1 = rng.range(1, 4), h2 = rng.range(2, 7), distance = speed * (h1 + h2);
      put(out, "Problem: A train must cover {} km. It runs at {} km per hour and has already run for {} hours. "
          "How many more hours does it need?\n", distance, speed, h1);
      put(out, "Solution: So far it covered {} * {} = {} km.\n", speed, h1, speed * h1);
      put(out, "Remaining distance: {} - {} = {} km.\nTime left: {} / {} = {} hours.\n", distance, speed * h1,
          speed * h2, speed * h2, speed, h2);
      return fmt::format("{}", h2);
    }
    default: {  // several machines at a work rate
      const int64_t machines = rng.range(2, 6), per_hour = number(rng, level + 1), hours = rng.range(2, 9);
      put(out, "Problem: A factory has {} machines. Each machine makes {} parts per hour. "
          "How many parts do they make in {} hours?\n", machines, per_hour, hours);
      put(out, "Solution: Per hour all machines make {} * {} = {} parts.\n", machines, per_hour, machines * per_hour);
      put(out, "In {} hours: {} * {} = {} parts.\n", hours, machines * per_hour, hours, machines * per_hour * hours);
      return fmt::format("{}", machines * per_hour * hours);
    }
  }
}

// N * pct / 100 is a whole number when N is a multiple of 100 / gcd(pct, 100).
int64_t round_base(Rng& rng, int level, int64_t pct) {
  const int64_t unit = 100 / std::gcd<int64_t>(pct, 100);
  const int64_t max_n = level == 0 ? 200 : level == 1 ? 2000 : 9000;
  return unit * rng.range(std::max<int64_t>(1, 40 / unit), max_n / unit);
}

std::string percent(Rng& rng, int level, std::string& out) {
  constexpr int64_t kPercents[] = {5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 60, 75, 80};
  const int64_t pct = rng.pick(kPercents);
  const int64_t n = round_base(rng, level, pct);
  const int64_t part = n * pct / 100;
  constexpr const char* kThingsForSale[] = {"jacket", "bicycle", "lamp", "tent", "guitar", "printer"};
  switch (rng.below(3)) {
    case 0:
      put(out, "Problem: A {} costs ${}. It is on sale for {}% off. What is the sale price in dollars?\n",
          rng.pick(kThingsForSale), n, pct);
      put(out, "Solution: The discount is {}% of {}: {} * {} / 100 = {}.\n", pct, n, n, pct, part);
      put(out, "Sale price: {} - {} = {}.\n", n, part, n - part);
      return fmt::format("{}", n - part);
    case 1:
      put(out, "Problem: A town had {} trees. This year the number grew by {}%. How many trees are there now?\n", n, pct);
      put(out, "Solution: The increase is {}% of {}: {} * {} / 100 = {}.\n", pct, n, n, pct, part);
      put(out, "New number: {} + {} = {}.\n", n, part, n + part);
      return fmt::format("{}", n + part);
    default: {
      // Three groups that share 100%; the question asks about the remaining group.
      const int64_t p2 = std::min<int64_t>(rng.pick(kPercents), 95 - pct);
      const int64_t rest_pct = 100 - pct - p2;
      const int64_t m = round_base(rng, level, 5);  // multiple of 20: any multiple of 5% is whole
      put(out, "Problem: A school has {} students. {}% walk to school and {}% take the bus. "
          "The rest come by car. How many students come by car?\n", m, pct, p2);
      put(out, "Solution: Walk or bus: {} + {} = {} percent.\nBy car: 100 - {} = {} percent.\n", pct, p2, pct + p2,
          pct + p2, rest_pct);
      put(out, "{}% of {}: {} * {} / 100 = {}.\n", rest_pct, m, m, rest_pct, m * rest_pct / 100);
      return fmt::format("{}", m * rest_pct / 100);
    }
  }
}

std::string multi_step(Rng& rng, int level, std::string& out) {
  const Person& who = rng.pick(kPeople);
  if (rng.coin()) {  // produce, sell twice, pack the rest
    const int64_t trays = rng.range(3, 6 + 6 * level), per_tray = rng.range(6, 12 + 12 * level);
    const int64_t made = trays * per_tray;
    const int64_t sold1 = rng.range(1, made / 3), sold2 = rng.range(1, made / 3);
    const int64_t left = made - sold1 - sold2;
    const int64_t box = rng.range(4, 12);
    put(out, "Problem: {} bakes {} trays of {} muffins. {} sells {} in the morning and {} in the afternoon, "
        "then packs the rest into boxes of {}. How many muffins are left over after filling the boxes?\n",
        who.name, trays, per_tray, who.Pronoun, sold1, sold2, box);
    put(out, "Solution: Muffins baked: {} * {} = {}.\n", trays, per_tray, made);
    put(out, "After the morning: {} - {} = {}.\n", made, sold1, made - sold1);
    put(out, "After the afternoon: {} - {} = {}.\n", made - sold1, sold2, left);
    put(out, "Full boxes: {} * {} = {}, and {} - {} = {} left over.\n", left / box, box, left / box * box, left,
        left / box * box, left % box);
    return fmt::format("{}", left % box);
  }
  // Teams and equipment: exact division, then multiplication and a total.
  const int64_t team = rng.range(3, 8), teams = rng.range(3, 6 + 8 * level);
  const int64_t students = team * teams, balls = rng.range(2, 4), cost = rng.range(3, 9 + 10 * level);
  put(out, "Problem: {} students are split into teams of {}. Each team gets {} balls, and each ball costs ${}. "
      "How many dollars do the balls cost?\n", students, team, balls, cost);
  put(out, "Solution: Teams: {} / {} = {}.\nBalls: {} * {} = {}.\nCost: {} * {} = {} dollars.\n", students, team,
      teams, teams, balls, teams * balls, teams * balls, cost, teams * balls * cost);
  return fmt::format("{}", teams * balls * cost);
}

std::string expression(Rng& rng, int level, std::string& out) {
  const int64_t b = number(rng, std::max(1, level)), c = rng.range(2, 9 + 10 * level);
  const int64_t e = rng.range(2, 9 + 3 * level), q = rng.range(2, 9 + 10 * level), d = e * q;
  const int64_t a = number(rng, level + 2) + d;  // large enough that the result stays positive
  constexpr const char* kVerbs[] = {"Evaluate", "Compute", "Find the value of", "Work out"};
  const char* verb = rng.pick(kVerbs);
  if (rng.coin()) {
    put(out, "Problem: {} {} + {} * {} - {} / {}.\n", verb, a, b, c, d, e);
    put(out, "Solution: Multiplication and division come before addition and subtraction.\n");
    put(out, "{} * {} = {}.\n{} / {} = {}.\n", b, c, b * c, d, e, q);
    put(out, "Now left to right: {} + {} = {}.\n{} - {} = {}.\n", a, b * c, a + b * c, a + b * c, q, a + b * c - q);
    return fmt::format("{}", a + b * c - q);
  }
  put(out, "Problem: {} ({} + {}) * {} - {}.\n", verb, a, b, c, d);
  put(out, "Solution: The brackets come first: {} + {} = {}.\n", a, b, a + b);
  put(out, "Then multiply: {} * {} = {}.\nThen subtract: {} - {} = {}.\n", a + b, c, (a + b) * c, (a + b) * c, d,
      (a + b) * c - d);
  return fmt::format("{}", (a + b) * c - d);
}

using KindFn = std::string (*)(Rng&, int, std::string&);
constexpr KindFn kKindFns[kSynthKindCount] = {addition, subtraction, multiplication, division,  running_total,
                                              shopping, rate,        percent,        multi_step, expression};
constexpr const char* kKindNames[kSynthKindCount] = {"addition", "subtraction", "multiplication", "division",
                                                     "running_total", "shopping", "rate", "percent", "multi_step",
                                                     "expression"};

}  // namespace

const char* synth_kind_name(SynthKind kind) {
  const int k = static_cast<int>(kind);
  return k >= 0 && k < kSynthKindCount ? kKindNames[k] : "unknown";
}

namespace {
void check_options(const SynthOptions& o) {
  if (!(o.easy >= 0 && o.medium >= 0 && o.hard >= 0 && o.easy + o.medium + o.hard > 0))
    throw std::invalid_argument("synth corpus: difficulty weights must be non-negative with a positive sum");
}
}  // namespace

std::string synth_document(uint64_t seed, uint64_t index, const SynthOptions& options, SynthKind* kind) {
  check_options(options);
  const double total_weight = options.easy + options.medium + options.hard;
  Rng rng(seed, index);
  std::string doc;
  doc.reserve(kSynthMaxChars);
  // A draw rarely falls outside the length bounds (tiny or huge operands); drawing
  // again from the same stream keeps the document a pure function of (seed, index).
  for (;;) {
    const int k = static_cast<int>(rng.below(kSynthKindCount));
    const double u = rng.uniform() * total_weight;
    const int level = u < options.easy ? 0 : u < options.easy + options.medium ? 1 : 2;
    doc.clear();
    const std::string answer = kKindFns[k](rng, level, doc);
    put(doc, "Answer: {}\n", answer);
    if (doc.size() >= kSynthMinChars && doc.size() <= kSynthMaxChars) {
      if (kind) *kind = static_cast<SynthKind>(k);
      return doc;
    }
  }
}

std::vector<std::string> synth_corpus(uint64_t seed, size_t n_docs, const SynthOptions& options) {
  check_options(options);  // here, because an exception must not escape the parallel loop
  std::vector<std::string> docs(n_docs);
  // Documents are independent, so generating them in parallel changes nothing.
#pragma omp parallel for schedule(static) if (n_docs > 4096)
  for (size_t i = 0; i < n_docs; i++) docs[i] = synth_document(seed, i, options);
  return docs;
}

}  // namespace rpt
