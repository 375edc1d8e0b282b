// What rpt may replace at an output path. A command never silently replaces what is
// not its own earlier output:
//   - a directory output (a checkpoint, the demo's directory) may go where nothing is,
//     into an empty directory, or onto a directory rpt wrote as the same kind, which
//     it recognises by the marker file rpt_output.json it writes into each of them;
//   - a single-file output (a corpus, tokenizer.json, positions, metrics, a plot) may
//     go only where nothing is: an existing file is never taken for rpt's own, since a
//     user's corpus or tokenizer.json looks exactly like one rpt writes;
//   - --overwrite lifts both rules (a checkpoint then replaces what is there whole, the
//     demo writes its files into the directory), except that a directory is never
//     deleted to put a file in its place.
// The claim_* functions check before any work, so a refusal costs nothing, then clear
// the stale temporaries of killed writers beside the path (model/stale_temporaries.h).
#pragma once

#include <string>

namespace rpt {

constexpr const char* kOutputMarkerFile = "rpt_output.json";
// Directory kinds. Every checkpoint is one kind, whichever command wrote it (pretrain,
// train, convert or the demo), so `rpt train --out` may replace a pretrain checkpoint.
constexpr const char* kCheckpointOutput = "checkpoint";
constexpr const char* kDemoOutput = "demo";

// Writes the marker that makes `dir` recognisably rpt's output of `kind`.
void write_output_marker(const std::string& dir, const std::string& kind);
// The kind in dir's marker; empty when it has none (or one rpt did not write).
std::string output_marker_kind(const std::string& dir);

// May a directory of `kind` be written at `path` (given by `flag`)? Throws
// std::invalid_argument naming the flag and the path when not. Writing back into
// `resume_dir`, the checkpoint a run continues, is always allowed.
void claim_directory_output(const std::string& flag, const std::string& path, const std::string& kind,
                            bool overwrite, const std::string& resume_dir = "");
// May a file be written at `path`? `append`: the command adds to an existing file (a
// resumed run's metrics), which replaces nothing.
void claim_file_output(const std::string& flag, const std::string& path, bool overwrite, bool append = false);

}  // namespace rpt
