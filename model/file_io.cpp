// file_io: whole-file reads and atomic whole-file writes (see file_io.h).
#include "model/file_io.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

namespace rpt {

namespace {

std::runtime_error io_error(const std::string& what, const std::string& path, int err) {
  return std::runtime_error(fmt::format("{} '{}': {}", what, path, std::strerror(err)));
}

// write() may write fewer bytes than asked (signals, pipes); loop until done.
bool write_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// The directory holding `path` ("." for a bare file name), for the post-rename fsync.
std::string parent_directory(const std::string& path) {
  std::string parent = std::filesystem::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}

}  // namespace

AtomicFileWriter::AtomicFileWriter(const std::string& path)
    : path_(path), tmp_path_(fmt::format("{}.tmp.{}", path, static_cast<long>(::getpid()))) {
  fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw io_error("cannot create", tmp_path_, errno);
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) {  // never committed: abandon the temp file, keep the old <path>
    ::close(fd_);
    ::unlink(tmp_path_.c_str());
  }
}

void AtomicFileWriter::write(std::string_view bytes) {
  if (fd_ < 0) throw std::runtime_error(fmt::format("write to '{}' after commit", path_));
  if (!write_all(fd_, bytes.data(), bytes.size())) throw io_error("cannot write", path_, errno);
}

void AtomicFileWriter::commit() {
  if (fd_ < 0) throw std::runtime_error(fmt::format("'{}' committed twice", path_));
  int fd = fd_;
  fd_ = -1;  // from here on, failures clean up explicitly
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    ::unlink(tmp_path_.c_str());
    throw io_error("cannot sync", path_, err);
  }
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp_path_.c_str());
    throw io_error("cannot write", path_, err);
  }
  if (::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp_path_.c_str());
    throw io_error("cannot rename temp file onto", path_, err);
  }
  // Without this the rename may be lost on power failure even though the data is safe.
  const std::string dir = parent_directory(path_);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) throw io_error("cannot open directory of", path_, errno);
  int rc = ::fsync(dfd);
  int err = errno;
  ::close(dfd);
  // Some filesystems (e.g. certain network mounts) reject fsync on directories.
  if (rc != 0 && err != EINVAL && err != ENOTSUP) throw io_error("cannot sync directory of", path_, err);
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  AtomicFileWriter writer(path);
  writer.write(bytes);
  writer.commit();
}

std::string read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw io_error("cannot open", path, errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    throw io_error("cannot stat", path, err);
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    throw std::runtime_error(fmt::format("cannot read '{}': is a directory", path));
  }
  std::string out;
  out.reserve(static_cast<size_t>(st.st_size));
  // Read until EOF rather than trusting st_size, so pipes and /proc files work too.
  constexpr size_t kChunk = 1 << 16;
  char buf[kChunk];
  for (;;) {
    ssize_t n = ::read(fd, buf, kChunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      throw io_error("cannot read", path, err);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

void ensure_directory(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) throw std::runtime_error(fmt::format("cannot create directory '{}': {}", path, ec.message()));
  if (!std::filesystem::is_directory(path, ec))
    throw std::runtime_error(fmt::format("cannot create directory '{}': exists and is not a directory", path));
}

}  // namespace rpt
