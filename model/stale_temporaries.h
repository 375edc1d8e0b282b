// Leftovers of killed writers. A checkpoint is written into "NAME.tmp-PID" and a file
// into "NAME.tmp.PID" beside its final name, then renamed into place; a process killed
// mid-write (kill -9, out of memory, a node failure) leaves that temporary behind for
// ever. Before writing NAME, rpt removes the temporaries of NAME whose process no
// longer runs, and says so.
#pragma once

#include <string>
#include <vector>

namespace rpt {

// Removes every "NAME.tmp-PID" directory and "NAME.tmp.PID" file beside `target` (NAME
// = its last path component) whose PID is not a running process, printing one line on
// stderr per removal. A "NAME.old-PID" of a dead process (a checkpoint moved aside while
// being replaced) is put back when NAME is missing, and otherwise removed too. A temporary of a running process (this one included) is kept:
// it may be a concurrent write. Returns the removed paths; never throws (a temporary
// that cannot be removed is reported and left).
// On a shared file system a temporary of a live process on another machine looks
// dead here: do not write the same output path from two machines at once.
std::vector<std::string> remove_stale_temporaries(const std::string& target);

}  // namespace rpt
