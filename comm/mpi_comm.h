// Internal to comm/: the MPI and NCCL backends behind make_comm() and MpiRuntime.
// Only declared in a build with MPI (RPT_WITH_MPI); nothing outside comm/ includes it.
#pragma once

#ifdef RPT_WITH_MPI

#include <memory>
#include <string>

#include "comm/comm.h"

namespace rpt::mpi_detail {

// MPI_Init_thread, then this process's world rank/size and its rank/size on its node
// (MPI_Comm_split_type shared memory); `serialized`: MPI_THREAD_SERIALIZED was granted.
void init(int* argc, char*** argv, int& rank, int& size, int& local_rank, int& local_size, bool& serialized);
void finalize();
[[noreturn]] void abort_world(int exit_code);
std::string library_version();  // e.g. "Open MPI v4.1.4"

std::unique_ptr<Comm> make_mpi_comm(const MpiRuntime& runtime, OpContext ctx);
#ifdef RPT_WITH_NCCL
std::unique_ptr<Comm> make_nccl_comm(const MpiRuntime& runtime, OpContext ctx);
#endif

}  // namespace rpt::mpi_detail

#endif  // RPT_WITH_MPI
