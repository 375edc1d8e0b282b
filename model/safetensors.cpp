// safetensors: reader (mmap + validation) and atomic writer. See safetensors.h.
#include "model/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <limits>
#include <set>
#include <stdexcept>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "model/file_io.h"
#include "model/half.h"

// The format is little-endian; we copy F32/F16/BF16 bytes straight to and from memory.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors I/O assumes a little-endian host");

namespace rpt {

namespace {

constexpr size_t kHeaderLengthBytes = 8;
// Same bound as the reference implementation: refuse absurd headers before parsing.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr size_t kHeaderAlignment = 8;
constexpr const char* kMetadataKey = "__metadata__";

struct DtypeInfo {
  const char* name;
  size_t size;
};
// Every dtype of the safetensors spec with a whole-byte element size.
constexpr DtypeInfo kDtypes[] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"F8_E8M0", 1},
    {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},     {"U32", 4},
    {"F32", 4},  {"I64", 8}, {"U64", 8}, {"F64", 8},
};

size_t dtype_size_or_zero(std::string_view dtype) {
  for (const DtypeInfo& d : kDtypes)
    if (dtype == d.name) return d.size;
  return 0;
}

// "[2, 3]". (Hand-rolled: fmt::join over int64 trips a GCC -Wstringop-overflow false positive.)
std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); i++) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Errors all start with the file so that a user with many shards knows which one.
template <typename... Args>
std::runtime_error st_error(const std::string& path, fmt::format_string<Args...> f, Args&&... args) {
  return std::runtime_error(fmt::format("safetensors '{}': {}", path, fmt::format(f, std::forward<Args>(args)...)));
}

// Read-only whole-file mapping; the shared_ptr deleter unmaps it.
std::shared_ptr<const void> map_file(const std::string& path, size_t* size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw st_error(path, "cannot open: {}", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    throw st_error(path, "cannot stat: {}", std::strerror(err));
  }
  *size = static_cast<size_t>(st.st_size);
  if (*size < kHeaderLengthBytes) {
    ::close(fd);
    throw st_error(path, "truncated: {} bytes, shorter than the 8-byte header length", *size);
  }
  void* addr = ::mmap(nullptr, *size, PROT_READ, MAP_PRIVATE, fd, 0);
  int err = errno;
  ::close(fd);  // the mapping stays valid after close
  if (addr == MAP_FAILED) throw st_error(path, "cannot mmap: {}", std::strerror(err));
  size_t len = *size;
  return std::shared_ptr<const void>(addr, [len](const void* p) { ::munmap(const_cast<void*>(p), len); });
}

// numel * elem_size with overflow detection; false on overflow or negative dims.
bool byte_size(const std::vector<int64_t>& shape, size_t elem_size, size_t* out) {
  size_t n = elem_size;
  for (int64_t d : shape) {
    if (d < 0) return false;
    if (d != 0 && n > std::numeric_limits<size_t>::max() / static_cast<size_t>(d)) return false;
    n *= static_cast<size_t>(d);
  }
  *out = n;
  return true;
}

SafetensorsEntry parse_entry(const std::string& path, const std::string& name, const nlohmann::json& j) {
  if (!j.is_object()) throw st_error(path, "tensor '{}': entry is not an object", name);
  for (const char* field : {"dtype", "shape", "data_offsets"})
    if (!j.contains(field)) throw st_error(path, "tensor '{}': missing field '{}'", name, field);
  SafetensorsEntry e;
  e.name = name;
  const auto& dtype = j["dtype"];
  if (!dtype.is_string()) throw st_error(path, "tensor '{}': 'dtype' is not a string", name);
  e.dtype = dtype.get<std::string>();
  if (dtype_size_or_zero(e.dtype) == 0) throw st_error(path, "tensor '{}': unknown dtype '{}'", name, e.dtype);
  const auto& shape = j["shape"];
  if (!shape.is_array()) throw st_error(path, "tensor '{}': 'shape' is not an array", name);
  for (const auto& d : shape) {
    if (!d.is_number_unsigned()) throw st_error(path, "tensor '{}': 'shape' has a non-integer or negative entry", name);
    e.shape.push_back(d.get<int64_t>());
  }
  const auto& offsets = j["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned())
    throw st_error(path, "tensor '{}': 'data_offsets' must be two non-negative integers", name);
  e.begin = offsets[0].get<size_t>();
  e.end = offsets[1].get<size_t>();
  return e;
}

}  // namespace

size_t safetensors_dtype_size(std::string_view dtype) {
  size_t s = dtype_size_or_zero(dtype);
  if (s == 0) throw std::runtime_error(fmt::format("unknown safetensors dtype '{}'", dtype));
  return s;
}

int64_t SafetensorsEntry::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile f;
  f.path_ = path;
  size_t file_size = 0;
  f.mapping_ = map_file(path, &file_size);
  const auto* bytes = static_cast<const uint8_t*>(f.mapping_.get());

  uint64_t n = 0;
  for (size_t i = 0; i < kHeaderLengthBytes; i++) n |= static_cast<uint64_t>(bytes[i]) << (8 * i);
  if (n > kMaxHeaderBytes) throw st_error(path, "header length {} exceeds the {}-byte limit", n, kMaxHeaderBytes);
  if (n > file_size - kHeaderLengthBytes)
    throw st_error(path, "header length {} runs past the end of the {}-byte file", n, file_size);
  f.data_ = bytes + kHeaderLengthBytes + n;
  const size_t data_size = file_size - kHeaderLengthBytes - n;

  // nlohmann keeps the last of duplicate keys silently; catch duplicates while parsing.
  std::set<std::string> seen;
  std::string duplicate;
  auto on_event = [&](int depth, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) {
    if (ev == nlohmann::json::parse_event_t::key && depth == 1) {
      const std::string key = parsed.get<std::string>();
      if (!seen.insert(key).second && duplicate.empty()) duplicate = key;
    }
    return true;
  };
  const char* header_begin = reinterpret_cast<const char*>(bytes + kHeaderLengthBytes);
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(header_begin, header_begin + n, on_event);
  } catch (const nlohmann::json::exception& e) {
    throw st_error(path, "header is not valid JSON: {}", e.what());
  }
  if (!header.is_object()) throw st_error(path, "header is not a JSON object");
  if (!duplicate.empty()) throw st_error(path, "duplicate tensor name '{}' in header", duplicate);

  for (const auto& [key, value] : header.items()) {
    if (key == kMetadataKey) {
      if (!value.is_object()) throw st_error(path, "'{}' is not an object", kMetadataKey);
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) throw st_error(path, "metadata '{}' is not a string", mk);
        f.metadata_[mk] = mv.get<std::string>();
      }
      continue;
    }
    f.entries_.push_back(parse_entry(path, key, value));
  }

  // Tensors must tile the data buffer exactly: sorted by offset, each starts where
  // the previous ended, sizes agree with dtype x shape, and the last ends at EOF.
  std::sort(f.entries_.begin(), f.entries_.end(), [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  size_t expected_begin = 0;
  for (const SafetensorsEntry& e : f.entries_) {
    if (e.begin != expected_begin)
      throw st_error(path, "tensor '{}': data_offsets [{}, {}] {} (expected begin {})", e.name, e.begin, e.end,
                     e.begin < expected_begin ? "overlap the previous tensor" : "leave a gap after the previous tensor",
                     expected_begin);
    if (e.end < e.begin) throw st_error(path, "tensor '{}': data_offsets end {} < begin {}", e.name, e.end, e.begin);
    size_t nbytes = 0;
    if (!byte_size(e.shape, safetensors_dtype_size(e.dtype), &nbytes) || nbytes != e.end - e.begin)
      throw st_error(path, "tensor '{}': {} {} needs {} bytes but data_offsets [{}, {}] span {}", e.name, e.dtype,
                     shape_str(e.shape), nbytes, e.begin, e.end, e.end - e.begin);
    expected_begin = e.end;
  }
  if (expected_begin != data_size)
    throw st_error(path, "tensors cover {} bytes but the data buffer has {} (truncated or trailing bytes)",
                   expected_begin, data_size);
  for (size_t i = 0; i < f.entries_.size(); i++) f.index_.emplace(f.entries_[i].name, i);
  return f;
}

const SafetensorsEntry* SafetensorsFile::find(std::string_view name) const {
  auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &entries_[it->second];
}

const SafetensorsEntry& SafetensorsFile::expect_float(std::string_view name,
                                                      const std::vector<int64_t>& expected_shape) const {
  const SafetensorsEntry* e = find(name);
  if (!e) throw st_error(path_, "tensor '{}' not found", name);
  if (e->shape != expected_shape)
    throw st_error(path_, "tensor '{}' has shape {}, expected {}", name, shape_str(e->shape), shape_str(expected_shape));
  if (e->dtype != "F32" && e->dtype != "BF16" && e->dtype != "F16")
    throw st_error(path_, "tensor '{}' has dtype {}, not a float format convertible to F32", name, e->dtype);
  return *e;
}

void SafetensorsFile::read_f32(std::string_view name, const std::vector<int64_t>& expected_shape, float* dst) const {
  const SafetensorsEntry& e = expect_float(name, expected_shape);
  const uint8_t* src = raw_data(e);
  const int64_t n = e.numel();
  if (n == 0) return;  // dst may legitimately be null for an empty tensor
  // Big tensors (embeddings, MLP weights) are worth converting on all cores.
  constexpr int64_t kParallelThreshold = 1 << 16;
  if (e.dtype == "F32") {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
  } else {
    const bool is_bf16 = e.dtype == "BF16";
    // memcpy per element: the data buffer need not be 2-byte aligned in foreign files.
#pragma omp parallel for if (n > kParallelThreshold) schedule(static)
    for (int64_t i = 0; i < n; i++) {
      uint16_t h;
      std::memcpy(&h, src + 2 * i, sizeof h);
      dst[i] = is_bf16 ? bf16_to_f32(h) : f16_to_f32(h);
    }
  }
  release_pages(e);
}

void SafetensorsFile::release_pages(const SafetensorsEntry& entry) const {
  // Whole pages only: a page shared with a neighbour tensor may still be wanted (and
  // dropping it would only cost a re-read anyway).
  const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(data_ + entry.begin) + page - 1) / page * page;
  const uintptr_t end = reinterpret_cast<uintptr_t>(data_ + entry.end) / page * page;
  // Advice only: a failure leaves the pages resident, which is never wrong.
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

void write_safetensors(const std::string& path, const std::vector<SafetensorsTensorRef>& tensors,
                       const std::map<std::string, std::string>& metadata, std::string_view out_dtype) {
  if (out_dtype != "F32" && out_dtype != "BF16" && out_dtype != "F16")
    throw st_error(path, "cannot write dtype '{}' (supported: F32, BF16, F16)", out_dtype);
  const size_t elem_size = safetensors_dtype_size(out_dtype);

  // ordered_json keeps tensors in the caller's order, which is also data order.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header[kMetadataKey] = meta;
  }
  std::set<std::string> names;
  size_t offset = 0;
  for (const SafetensorsTensorRef& t : tensors) {
    if (t.name == kMetadataKey) throw st_error(path, "tensor name '{}' is reserved", t.name);
    if (!names.insert(t.name).second) throw st_error(path, "duplicate tensor name '{}'", t.name);
    size_t nbytes = 0;
    if (!byte_size(t.shape, elem_size, &nbytes)) throw st_error(path, "tensor '{}': invalid shape {}", t.name, shape_str(t.shape));
    if (nbytes > 0 && t.data == nullptr) throw st_error(path, "tensor '{}': null data", t.name);
    header[t.name] = {{"dtype", out_dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string header_json = header.dump();
  header_json.append((kHeaderAlignment - header_json.size() % kHeaderAlignment) % kHeaderAlignment, ' ');

  AtomicFileWriter out(path);
  char len_bytes[kHeaderLengthBytes];
  const uint64_t n = header_json.size();
  for (size_t i = 0; i < kHeaderLengthBytes; i++) len_bytes[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  out.write(std::string_view(len_bytes, kHeaderLengthBytes));
  out.write(header_json);

  // Convert in bounded chunks so a multi-GB checkpoint never needs a second full copy.
  constexpr size_t kChunkElems = 1 << 20;
  std::vector<uint16_t> half_buf;
  for (const SafetensorsTensorRef& t : tensors) {
    size_t numel = 1;
    for (int64_t d : t.shape) numel *= static_cast<size_t>(d);
    if (out_dtype == "F32") {
      out.write(std::string_view(reinterpret_cast<const char*>(t.data), numel * sizeof(float)));
      continue;
    }
    const bool to_bf16 = out_dtype == "BF16";
    for (size_t start = 0; start < numel; start += kChunkElems) {
      const size_t count = std::min(kChunkElems, numel - start);
      half_buf.resize(count);
      for (size_t i = 0; i < count; i++)
        half_buf[i] = to_bf16 ? f32_to_bf16(t.data[start + i]) : f32_to_f16(t.data[start + i]);
      out.write(std::string_view(reinterpret_cast<const char*>(half_buf.data()), count * sizeof(uint16_t)));
    }
  }
  out.commit();
}

}  // namespace rpt
