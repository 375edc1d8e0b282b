// Tests for model/output_guard and model/stale_temporaries: what rpt may replace at an
// output path, and which leftovers of killed writers it removes.
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

#include "model/file_io.h"
#include "model/output_guard.h"
#include "model/stale_temporaries.h"
#include "tests/temp_dir.h"

namespace fs = std::filesystem;

namespace {

using rpt::testing::TempDir;

// The PID of a process that has exited and been reaped: no process has it (until the
// kernel hands it out again, which takes a full cycle of the PID space).
pid_t dead_pid() {
    const pid_t child = ::fork();
    if (child == 0) ::_exit(0);
    ::waitpid(child, nullptr, 0);
    return child;
}

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST(StaleTemporaries, RemovesOnlyDeadWritersTemporariesOfTheTarget) {
    TempDir dir;
    const std::string ck = dir.file("ck");
    const std::string dead = std::to_string(dead_pid()), live = std::to_string(::getpid());
    fs::create_directories(ck + ".tmp-" + dead + "/sub");
    dir.write("ck.tmp." + dead, "half a file");
    fs::create_directories(ck + ".tmp-" + live);          // this process: may be writing
    fs::create_directories(dir.file("ck2.tmp-" + dead));  // another target's
    fs::create_directories(dir.file("ck.tmp-12ab"));      // not a PID
    fs::create_directories(dir.file("ck.old-" + dead));   // the only copy: ck is missing
    const std::vector<std::string> removed = rpt::remove_stale_temporaries(ck);
    EXPECT_EQ(removed.size(), 2u);
    EXPECT_FALSE(fs::exists(ck + ".tmp-" + dead));
    EXPECT_FALSE(fs::exists(ck + ".tmp." + dead));
    EXPECT_TRUE(fs::exists(ck + ".tmp-" + live));
    EXPECT_TRUE(fs::exists(dir.file("ck2.tmp-" + dead)));
    EXPECT_TRUE(fs::exists(dir.file("ck.tmp-12ab")));
    // A writer killed between its two renames: the moved-aside version is put back.
    EXPECT_FALSE(fs::exists(dir.file("ck.old-" + dead)));
    EXPECT_TRUE(fs::is_directory(ck));
}

TEST(StaleTemporaries, MissingParentIsNotAnError) {
    TempDir dir;
    EXPECT_TRUE(rpt::remove_stale_temporaries(dir.file("no/such/ck")).empty());
}

TEST(OutputGuard, DirectoryOutputGoesWhereNothingIsOrOntoItsOwnKind) {
    TempDir dir;
    rpt::claim_directory_output("--out", dir.file("new/ck"), rpt::kCheckpointOutput, false);
    fs::create_directories(dir.file("empty"));
    rpt::claim_directory_output("--out", dir.file("empty"), rpt::kCheckpointOutput, false);
    fs::create_directories(dir.file("ck"));
    rpt::write_output_marker(dir.file("ck"), rpt::kCheckpointOutput);
    dir.write("ck/model.safetensors", "weights");
    EXPECT_EQ(rpt::output_marker_kind(dir.file("ck")), rpt::kCheckpointOutput);
    rpt::claim_directory_output("--out", dir.file("ck"), rpt::kCheckpointOutput, false);
}

TEST(OutputGuard, ForeignDirectoryOrFileIsRefusedNamingFlagAndPath) {
    TempDir dir;
    fs::create_directories(dir.file("thesis"));
    dir.write("thesis/thesis.tex", "chapter 1");
    const std::string foreign =
        error_of([&] { rpt::claim_directory_output("--out", dir.file("thesis"), rpt::kCheckpointOutput, false); });
    EXPECT_NE(foreign.find("--out " + dir.file("thesis")), std::string::npos) << foreign;
    EXPECT_NE(foreign.find("thesis.tex"), std::string::npos) << foreign;
    EXPECT_NE(foreign.find("--overwrite"), std::string::npos) << foreign;
    EXPECT_EQ(rpt::read_file(dir.file("thesis/thesis.tex")), "chapter 1");

    dir.write("notes.txt", "keep me");
    EXPECT_NE(error_of([&] { rpt::claim_directory_output("--out", dir.file("notes.txt"), rpt::kCheckpointOutput, false); }),
              "");
    fs::create_directories(dir.file("demo"));
    rpt::write_output_marker(dir.file("demo"), rpt::kDemoOutput);
    EXPECT_NE(error_of([&] { rpt::claim_directory_output("--out", dir.file("demo"), rpt::kCheckpointOutput, false); })
                  .find("demo output"),
              std::string::npos);
    // A marker that is not rpt's does not make a directory rpt's.
    dir.write("thesis/rpt_output.json", "{\"kind\": \"checkpoint\"}");
    EXPECT_EQ(rpt::output_marker_kind(dir.file("thesis")), "");
    EXPECT_NE(error_of([&] { rpt::claim_directory_output("--out", dir.file("thesis"), rpt::kCheckpointOutput, false); }),
              "");
}

TEST(OutputGuard, OverwriteAndResumeAreAllowed) {
    TempDir dir;
    fs::create_directories(dir.file("thesis"));
    dir.write("thesis/thesis.tex", "chapter 1");
    dir.write("notes.txt", "keep me");
    rpt::claim_directory_output("--out", dir.file("thesis"), rpt::kCheckpointOutput, true);
    rpt::claim_directory_output("--out", dir.file("notes.txt"), rpt::kCheckpointOutput, true);
    rpt::claim_directory_output("--out", dir.file("thesis"), rpt::kCheckpointOutput, false, dir.file("thesis"));
}

TEST(OutputGuard, FileOutputGoesOnlyWhereNothingIs) {
    TempDir dir;
    rpt::claim_file_output("--out", dir.file("corpus.jsonl"), false);
    dir.write("corpus.jsonl", "{\"text\": \"mine\"}\n");
    EXPECT_NE(error_of([&] { rpt::claim_file_output("--out", dir.file("corpus.jsonl"), false); }).find("exists"),
              std::string::npos);
    rpt::claim_file_output("--out", dir.file("corpus.jsonl"), true);
    rpt::claim_file_output("--metrics", dir.file("corpus.jsonl"), false, /*append=*/true);
    fs::create_directories(dir.file("adir"));
    EXPECT_NE(error_of([&] { rpt::claim_file_output("--out", dir.file("adir"), true); }).find("is a directory"),
              std::string::npos);
    EXPECT_NE(error_of([&] { rpt::claim_file_output("--out", dir.file("no/such/t.json"), false); }).find("does not exist"),
              std::string::npos);
    EXPECT_EQ(rpt::read_file(dir.file("corpus.jsonl")), "{\"text\": \"mine\"}\n");
}
