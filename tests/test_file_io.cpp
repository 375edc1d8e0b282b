// Tests for model/file_io: atomic writes replace content and leave no temp files.
#include <gtest/gtest.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <unistd.h>

#include "model/file_io.h"
#include "tests/temp_dir.h"

namespace fs = std::filesystem;

namespace {

using rpt::testing::TempDir;

size_t count_entries(const fs::path& dir) {
  size_t n = 0;
  for (auto it = fs::directory_iterator(dir); it != fs::directory_iterator(); ++it) n++;
  return n;
}

}  // namespace

TEST(FileIo, WriteThenReadRoundTrips) {
  TempDir dir;
  const std::string path = (dir.path / "a.bin").string();
  std::string bytes("hello\0world\n", 12);  // embedded NUL must survive
  rpt::write_file_atomic(path, bytes);
  EXPECT_EQ(rpt::read_file(path), bytes);
}

TEST(FileIo, AtomicWriteReplacesContentAndLeavesNoTempFile) {
  TempDir dir;
  const std::string path = (dir.path / "state.json").string();
  rpt::write_file_atomic(path, std::string(100000, 'x'));
  rpt::write_file_atomic(path, "short");
  EXPECT_EQ(rpt::read_file(path), "short");
  EXPECT_EQ(count_entries(dir.path), 1u);  // only state.json, no state.json.tmp.*
}

TEST(FileIo, EmptyFile) {
  TempDir dir;
  const std::string path = (dir.path / "empty").string();
  rpt::write_file_atomic(path, "");
  EXPECT_EQ(rpt::read_file(path), "");
}

TEST(FileIo, AbandonedWriterKeepsOldContent) {
  TempDir dir;
  const std::string path = (dir.path / "ckpt").string();
  rpt::write_file_atomic(path, "old");
  {
    rpt::AtomicFileWriter w(path);
    w.write("new but never committed");
  }  // destroyed without commit, as if an exception unwound it
  EXPECT_EQ(rpt::read_file(path), "old");
  EXPECT_EQ(count_entries(dir.path), 1u);
}

TEST(FileIo, ReadMissingFileNamesPath) {
  TempDir dir;
  const std::string path = (dir.path / "nope.txt").string();
  try {
    rpt::read_file(path);
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(FileIo, WriteIntoMissingDirectoryNamesPath) {
  TempDir dir;
  const std::string path = (dir.path / "no_such_dir" / "f.txt").string();
  try {
    rpt::write_file_atomic(path, "x");
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(FileIo, EnsureDirectoryCreatesParentsAndIsIdempotent) {
  TempDir dir;
  const std::string path = (dir.path / "a" / "b" / "c").string();
  rpt::ensure_directory(path);
  rpt::ensure_directory(path);
  EXPECT_TRUE(fs::is_directory(path));
  const std::string file = (dir.path / "plain").string();
  rpt::write_file_atomic(file, "x");
  EXPECT_THROW(rpt::ensure_directory(file), std::runtime_error);
}
