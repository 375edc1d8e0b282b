// safetensors: reader and writer for the Hugging Face safetensors format.
//
// Layout of a file:   [u64 little-endian N][N bytes of JSON header][data buffer]
// The header maps tensor names to {"dtype", "shape", "data_offsets": [begin, end]},
// offsets relative to the start of the data buffer, plus an optional
// "__metadata__": {string: string}. The reader memory-maps the file and validates it
// the way the reference (Rust) implementation does, so a file either loads
// completely or fails with a message naming the file and the offending tensor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace rpt {

// Bytes per element of a safetensors dtype ("F32" -> 4); throws for an unknown dtype.
size_t safetensors_dtype_size(std::string_view dtype);

struct SafetensorsEntry {
  std::string name;
  std::string dtype;           // as spelled in the file: "F32", "BF16", "F16", "I64", ...
  std::vector<int64_t> shape;  // empty = scalar
  size_t begin = 0, end = 0;   // byte range within the data buffer
  int64_t numel() const;
};

// A validated, read-only, memory-mapped safetensors file. Cheap to copy (the mapping
// is shared and unmapped when the last copy goes).
class SafetensorsFile {
 public:
  // Maps and validates `path`. Throws std::runtime_error naming the path and the
  // field or tensor at fault.
  static SafetensorsFile open(const std::string& path);

  const std::string& path() const { return path_; }
  // Entries in file order (ascending data offset).
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }
  // nullptr when absent.
  const SafetensorsEntry* find(std::string_view name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // The raw bytes of a tensor in the file's dtype (not necessarily aligned).
  const uint8_t* raw_data(const SafetensorsEntry& entry) const { return data_ + entry.begin; }

  // Tensor `name`, checked: throws, naming file and tensor, if it is missing, has
  // another shape than `expected_shape`, or has a dtype other than F32, BF16 or F16.
  const SafetensorsEntry& expect_float(std::string_view name, const std::vector<int64_t>& expected_shape) const;

  // Converts tensor `name` (F32, BF16 or F16) to fp32 into dst (numel floats), then
  // releases its pages (release_pages), so reading a whole file tensor by tensor keeps
  // at most one tensor of it resident. Throws as expect_float does.
  void read_f32(std::string_view name, const std::vector<int64_t>& expected_shape, float* dst) const;

  // Drops the mapped pages of `entry` from this process's resident set (the page cache
  // keeps them; touching them again reads them back): a multi-GB checkpoint streamed
  // into the parameters never has the whole file mapped in at once.
  void release_pages(const SafetensorsEntry& entry) const;

 private:
  std::string path_;
  std::shared_ptr<const void> mapping_;  // keeps the mmap alive; munmaps on release
  const uint8_t* data_ = nullptr;        // start of the data buffer inside the mapping
  std::vector<SafetensorsEntry> entries_;
  std::unordered_map<std::string, size_t> index_;  // name -> position in entries_
  std::map<std::string, std::string> metadata_;
};

// One fp32 tensor to write; `data` holds numel(shape) floats (may be null if numel 0).
struct SafetensorsTensorRef {
  std::string name;
  std::vector<int64_t> shape;
  const float* data = nullptr;
};

// Writes `tensors` (in the given order, contiguous) atomically to `path`, storing
// them as `out_dtype`: "F32", "BF16" (round-to-nearest-even) or "F16". The header is
// padded with spaces to a multiple of 8 bytes so the data buffer is 8-aligned.
void write_safetensors(const std::string& path, const std::vector<SafetensorsTensorRef>& tensors,
                       const std::map<std::string, std::string>& metadata, std::string_view out_dtype);

inline void write_safetensors_f32(const std::string& path, const std::vector<SafetensorsTensorRef>& tensors,
                                  const std::map<std::string, std::string>& metadata) {
  write_safetensors(path, tensors, metadata, "F32");
}

}  // namespace rpt
