// Tests for model/safetensors and model/half: bit-exact round trips, float16/bfloat16
// conversions, and one test per kind of malformed file (each error names the file).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

#include "model/file_io.h"
#include "model/half.h"
#include "model/safetensors.h"
#include "tests/temp_dir.h"

namespace fs = std::filesystem;

namespace {

using rpt::testing::TempDir;

// A safetensors file from a raw header string and data bytes, for malformed cases.
std::string raw_file(const std::string& header, const std::string& data, uint64_t header_len = UINT64_MAX) {
  uint64_t n = header_len == UINT64_MAX ? header.size() : header_len;
  std::string out(8, '\0');
  for (int i = 0; i < 8; i++) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

// Opens `path` expecting failure; checks the message names the file and `needle`.
void expect_open_error(const std::string& path, const std::string& needle) {
  try {
    rpt::SafetensorsFile::open(path);
    FAIL() << "expected an error for " << path;
  } catch (const std::runtime_error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << "missing '" << needle << "' in: " << msg;
  }
}

std::vector<float> test_values(size_t n, float scale) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; i++) v[i] = scale * std::sin(0.37f * static_cast<float>(i) + 1.0f) / (1.0f + i % 7);
  return v;
}

}  // namespace

TEST(SafetensorsHalf, Bf16RoundTripAndRounding) {
  // Every bf16 value widens and narrows back to itself (NaNs stay NaN).
  for (uint32_t h = 0; h < 0x10000; h++) {
    float f = rpt::bf16_to_f32(static_cast<uint16_t>(h));
    uint16_t back = rpt::f32_to_bf16(f);
    if (std::isnan(f))
      EXPECT_TRUE(std::isnan(rpt::bf16_to_f32(back)));
    else
      ASSERT_EQ(back, h) << "h=" << h;
  }
  // Ties go to even: 1 + 2^-8 is halfway between 1 and 1 + 2^-7 -> 1 (even mantissa).
  EXPECT_EQ(rpt::f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), rpt::f32_to_bf16(1.0f));
  // 1 + 3*2^-8 is halfway between 1+2^-7 (odd) and 1+2^-6 (even) -> rounds up.
  EXPECT_EQ(rpt::f32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), rpt::f32_to_bf16(1.0f + std::ldexp(1.0f, -6)));
  // Just above the tie rounds up.
  EXPECT_EQ(rpt::bf16_to_f32(rpt::f32_to_bf16(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20))),
            1.0f + std::ldexp(1.0f, -7));
  EXPECT_EQ(rpt::f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(rpt::f32_to_bf16(-2.0f), 0xc000);
  EXPECT_TRUE(std::isinf(rpt::bf16_to_f32(rpt::f32_to_bf16(std::numeric_limits<float>::max()))));
  EXPECT_TRUE(std::isnan(rpt::bf16_to_f32(rpt::f32_to_bf16(std::nanf("")))));
}

TEST(SafetensorsHalf, F16KnownValuesAndRoundTrip) {
  EXPECT_EQ(rpt::f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(rpt::f16_to_f32(0xc000), -2.0f);
  EXPECT_EQ(rpt::f16_to_f32(0x7bff), 65504.0f);
  EXPECT_EQ(rpt::f16_to_f32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(rpt::f16_to_f32(0x0400), std::ldexp(1.0f, -14));  // smallest normal
  EXPECT_TRUE(std::isinf(rpt::f16_to_f32(0x7c00)));
  EXPECT_TRUE(std::isnan(rpt::f16_to_f32(0x7e00)));
  EXPECT_TRUE(std::signbit(rpt::f16_to_f32(0x8000)));
  for (uint32_t h = 0; h < 0x10000; h++) {
    float f = rpt::f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(rpt::f32_to_f16(f), h) << "h=" << h;
  }
  EXPECT_TRUE(std::isinf(rpt::f16_to_f32(rpt::f32_to_f16(70000.0f))));
  EXPECT_EQ(rpt::f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie -> even
}

TEST(Safetensors, WriteReadF32BitIdentical) {
  TempDir dir;
  const std::string path = dir.file("model.safetensors");
  auto a = test_values(6, 1.0f);
  auto b = test_values(3 * 5 * 2, 100.0f);
  b[0] = -0.0f;
  b[1] = std::numeric_limits<float>::denorm_min();
  b[2] = std::numeric_limits<float>::infinity();
  float scalar = 42.5f;
  rpt::write_safetensors_f32(path,
                             {{"layer.weight", {2, 3}, a.data()},
                              {"emb", {3, 5, 2}, b.data()},
                              {"scale", {}, &scalar},
                              {"empty", {0, 4}, nullptr}},
                             {{"format", "pt"}, {"note", "hi \"there\""}});
  // Header is padded so the data buffer starts 8-aligned.
  std::string bytes = rpt::read_file(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);

  auto f = rpt::SafetensorsFile::open(path);
  ASSERT_EQ(f.entries().size(), 4u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.metadata().at("note"), "hi \"there\"");
  EXPECT_EQ(f.entries()[0].name, "layer.weight");  // file order = write order
  const rpt::SafetensorsEntry* e = f.find("emb");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->dtype, "F32");
  EXPECT_EQ(e->shape, (std::vector<int64_t>{3, 5, 2}));
  EXPECT_EQ(f.find("missing"), nullptr);

  std::vector<float> ra(6), rb(30);
  float rs = 0;
  f.read_f32("layer.weight", {2, 3}, ra.data());
  f.read_f32("emb", {3, 5, 2}, rb.data());
  f.read_f32("scale", {}, &rs);
  f.read_f32("empty", {0, 4}, nullptr);
  EXPECT_EQ(std::memcmp(ra.data(), a.data(), 6 * 4), 0);
  EXPECT_EQ(std::memcmp(rb.data(), b.data(), 30 * 4), 0);
  EXPECT_EQ(rs, 42.5f);

  // Rewriting what we read gives the identical file.
  const std::string path2 = dir.file("copy.safetensors");
  rpt::write_safetensors_f32(path2,
                             {{"layer.weight", {2, 3}, ra.data()},
                              {"emb", {3, 5, 2}, rb.data()},
                              {"scale", {}, &rs},
                              {"empty", {0, 4}, nullptr}},
                             f.metadata());
  EXPECT_EQ(rpt::read_file(path2), bytes);
}

TEST(Safetensors, WriteReadBf16AndF16) {
  TempDir dir;
  auto v = test_values(1000, 3.0f);
  for (const char* dtype : {"BF16", "F16"}) {
    const std::string path = dir.file(std::string(dtype) + ".safetensors");
    rpt::write_safetensors(path, {{"w", {10, 100}, v.data()}}, {}, dtype);
    auto f = rpt::SafetensorsFile::open(path);
    EXPECT_EQ(f.find("w")->dtype, dtype);
    EXPECT_EQ(f.find("w")->end, 2000u);
    std::vector<float> r(1000);
    f.read_f32("w", {10, 100}, r.data());
    for (size_t i = 0; i < v.size(); i++) {
      float expect = std::string(dtype) == "BF16" ? rpt::bf16_to_f32(rpt::f32_to_bf16(v[i]))
                                                  : rpt::f16_to_f32(rpt::f32_to_f16(v[i]));
      ASSERT_EQ(r[i], expect) << dtype << " i=" << i;
    }
  }
}

TEST(Safetensors, ReadsForeignLayoutWithUnpaddedHeader) {
  // A hand-made file: tensors listed out of offset order, odd header length, I64 entry.
  TempDir dir;
  const std::string path = dir.file("foreign.safetensors");
  std::string data(4 * 2 + 8, '\0');
  float x[2] = {1.5f, -2.0f};
  std::memcpy(&data[8], x, 8);
  std::string header =
      R"({"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})";
  rpt::write_file_atomic(path, raw_file(header, data));
  auto f = rpt::SafetensorsFile::open(path);
  ASSERT_EQ(f.entries().size(), 2u);
  EXPECT_EQ(f.entries()[0].name, "a");
  float r[2];
  f.read_f32("b", {2}, r);
  EXPECT_EQ(r[0], 1.5f);
  EXPECT_EQ(r[1], -2.0f);
  try {
    f.read_f32("a", {1}, r);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("I64"), std::string::npos);
  }
}

// ---- malformed inputs: each must fail with the file path in the message ----

class SafetensorsBad : public ::testing::Test {
 protected:
  TempDir dir_;
  std::string write(const std::string& name, const std::string& bytes) {
    std::string p = dir_.file(name);
    rpt::write_file_atomic(p, bytes);
    return p;
  }
};

TEST_F(SafetensorsBad, MissingFile) { expect_open_error(dir_.file("absent.safetensors"), "cannot open"); }

TEST_F(SafetensorsBad, TruncatedFileShorterThanLength) { expect_open_error(write("t.st", "abc"), "truncated"); }

TEST_F(SafetensorsBad, TruncatedData) {
  // A valid file with its last bytes chopped off.
  std::vector<float> v(16, 1.0f);
  std::string p = dir_.file("good.st");
  rpt::write_safetensors_f32(p, {{"w", {16}, v.data()}}, {});
  std::string bytes = rpt::read_file(p);
  expect_open_error(write("cut.st", bytes.substr(0, bytes.size() - 4)), "data buffer");
}

TEST_F(SafetensorsBad, HeaderLengthPastEnd) {
  expect_open_error(write("h.st", raw_file("{}", "", 1000)), "past the end");
}

TEST_F(SafetensorsBad, HeaderTooLarge) {
  expect_open_error(write("big.st", raw_file("{}", "", 200'000'000)), "limit");
}

TEST_F(SafetensorsBad, BadJson) { expect_open_error(write("j.st", raw_file("{\"a\": [1,", "")), "JSON"); }

TEST_F(SafetensorsBad, NotAnObject) { expect_open_error(write("o.st", raw_file("[1, 2]", "")), "object"); }

TEST_F(SafetensorsBad, MissingField) {
  expect_open_error(write("m.st", raw_file(R"({"w":{"dtype":"F32","shape":[1]}})", std::string(4, '\0'))),
                    "data_offsets");
}

TEST_F(SafetensorsBad, OverlappingOffsets) {
  std::string h =
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  expect_open_error(write("ov.st", raw_file(h, std::string(12, '\0'))), "overlap");
}

TEST_F(SafetensorsBad, GapBetweenTensors) {
  std::string h =
      R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})";
  expect_open_error(write("gap.st", raw_file(h, std::string(12, '\0'))), "gap");
}

TEST_F(SafetensorsBad, DataNotStartingAtZero) {
  std::string h = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
  expect_open_error(write("z.st", raw_file(h, std::string(8, '\0'))), "'a'");
}

TEST_F(SafetensorsBad, OutOfOrderOffsets) {
  // b's offsets are reversed (end < begin).
  std::string h = R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[4,0]}})";
  expect_open_error(write("ooo.st", raw_file(h, std::string(8, '\0'))), "end 0 < begin 4");
}

TEST_F(SafetensorsBad, SizeDisagreesWithShape) {
  std::string h = R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})";
  expect_open_error(write("sz.st", raw_file(h, std::string(8, '\0'))), "needs 12 bytes");
}

TEST_F(SafetensorsBad, TrailingBytes) {
  std::string h = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  expect_open_error(write("tr.st", raw_file(h, std::string(8, '\0'))), "data buffer");
}

TEST_F(SafetensorsBad, UnknownDtype) {
  std::string h = R"({"a":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}})";
  expect_open_error(write("dt.st", raw_file(h, std::string(4, '\0'))), "unknown dtype 'F33'");
}

TEST_F(SafetensorsBad, NegativeShape) {
  std::string h = R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})";
  expect_open_error(write("neg.st", raw_file(h, std::string(4, '\0'))), "shape");
}

TEST_F(SafetensorsBad, DuplicateNames) {
  std::string h =
      R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
  expect_open_error(write("dup.st", raw_file(h, std::string(8, '\0'))), "duplicate tensor name 'a'");
}

TEST_F(SafetensorsBad, MetadataNotStrings) {
  std::string h = R"({"__metadata__":{"step":3},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  expect_open_error(write("md.st", raw_file(h, std::string(4, '\0'))), "metadata");
}

TEST_F(SafetensorsBad, WrongShapeAndMissingTensorOnRead) {
  std::vector<float> v(6, 0.5f);
  std::string p = dir_.file("ok.st");
  rpt::write_safetensors_f32(p, {{"w", {2, 3}, v.data()}}, {});
  auto f = rpt::SafetensorsFile::open(p);
  std::vector<float> r(6);
  for (auto [name, shape, needle] :
       {std::tuple<std::string, std::vector<int64_t>, std::string>{"w", {3, 2}, "shape [2, 3], expected [3, 2]"},
        {"nope", {2, 3}, "'nope' not found"}}) {
    try {
      f.read_f32(name, shape, r.data());
      FAIL() << name;
    } catch (const std::runtime_error& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find(p), std::string::npos) << msg;
      EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    }
  }
}

TEST_F(SafetensorsBad, WriterRejectsDuplicateNames) {
  float x = 1;
  const std::string p = dir_.file("w.st");
  EXPECT_THROW(rpt::write_safetensors_f32(p, {{"a", {1}, &x}, {"a", {1}, &x}}, {}), std::runtime_error);
  EXPECT_FALSE(fs::exists(p));
}
