// file_io: whole-file reads and crash-safe (atomic) whole-file writes.
//
// Checkpoints, tokenizers and corpora are written with write_file_atomic so that a
// crash or a full disk never leaves a half-written file under the final name: the
// bytes go to "<path>.tmp.<pid>", are fsynced, renamed over <path>, and the parent
// directory is fsynced so the rename itself is durable.
#pragma once

#include <string>
#include <string_view>

namespace rpt {

// Streams a file into "<path>.tmp.<pid>" and renames it onto <path> on commit(), for
// files too large to build in memory first (multi-GB checkpoints). If destroyed
// without commit() (an exception mid-write), the temp file is removed and <path> is
// untouched.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(const std::string& path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(std::string_view bytes);
  // fsync, close, rename onto the final path, fsync the directory.
  void commit();
  const std::string& path() const { return path_; }

 private:
  std::string path_, tmp_path_;
  int fd_ = -1;
};

// Writes `bytes` to `path` atomically (temp file + fsync + rename + fsync of the
// directory). Throws std::runtime_error naming the path on any failure; the temp
// file is removed on failure.
void write_file_atomic(const std::string& path, std::string_view bytes);

// Returns the whole content of `path`. Throws std::runtime_error naming the path.
std::string read_file(const std::string& path);

// Creates `path` and any missing parents (like `mkdir -p`). Throws if it exists
// and is not a directory, or cannot be created.
void ensure_directory(const std::string& path);

}  // namespace rpt
