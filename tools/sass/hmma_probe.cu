// The tensor-core check's positive control (tools/sass-check.sh): one 16x16x16 bf16 WMMA
// tile, which must compile to HMMA instructions on every architecture the build targets.
// If the check cannot find HMMA here, its detector is broken, not the kernels. Built
// only for that check; not part of the library.
#include <cuda_bf16.h>
#include <mma.h>

constexpr int kTile = 16;

// c (16 x 16, row-major) = a (16 x 16, row-major) @ b (16 x 16, column-major), fp32 accumulate.
__global__ void hmma_probe_kernel(float* c, const __nv_bfloat16* a, const __nv_bfloat16* b) {
    using namespace nvcuda;
    wmma::fragment<wmma::matrix_a, kTile, kTile, kTile, __nv_bfloat16, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, kTile, kTile, kTile, __nv_bfloat16, wmma::col_major> fb;
    wmma::fragment<wmma::accumulator, kTile, kTile, kTile, float> fc;
    wmma::fill_fragment(fc, 0.0f);
    wmma::load_matrix_sync(fa, a, kTile);
    wmma::load_matrix_sync(fb, b, kTile);
    wmma::mma_sync(fc, fa, fb, fc);
    wmma::store_matrix_sync(c, fc, kTile, wmma::mem_row_major);
}
