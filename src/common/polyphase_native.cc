// The transforms of the polyphase convs at inference (src/common/polyphase.py, native_conv) as MindSpore aot Custom
// kernels for the CPU. src/common/native.py compiles this file after a prelude of its own, once per kind (strided or
// transposed), tile and padding, that defines
//   T, L, N, PAD   the input transform: windows of L rows and columns every T, zero padding PAD, N points per axis
//   PLANE[N*N]     where point (a, b) goes among the N*N planes of the input and weight transforms, and GROUP: the
//                  planes of one GEMM (4 phases for the stride-2 conv, which sums over them; 1 for the transposed one)
//   W_CK           1 when the weight is (c, k, 4, 4) (transposed conv), 0 for (k, c, 4, 4)
//   NO, TO         the output transform: NO points per axis to TO outputs per axis
//   THREADS, KERNEL(name) (the name with the tile, kind and padding appended)
// and, as macros of the transforms' non-zero terms (so that the compiler vectorises with constant coefficients):
//   IN_WINDOW_ROWS, IN_ROWS  the window rows p0..p(L-1) and the rows of the 1-D input transform over them, at s
//   IN_COLS                  its rows over the de-interleaved point row r: window column q of tile j is
//                            r[(q % T) * tw1 + q / T + j]
//   W_ROWS, W_COLS           the rows of the 1-D weight transform (N x 4) over the kernel's rows, then its columns
//   OUT_POINT_ROWS, OUT_COLS the rows of the 1-D output transform (TO x NO) over the GEMM products of point row a
//   OUT_ROW_CASES            the same over those, one switch case per output row r
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

namespace {
constexpr std::int64_t BLOCK_FLOATS = 1 << 17;  // 512 KB of points per block of channels

// dst[0:n] = src[0:n], with non-temporal stores where dst is 64-byte aligned: the points go to memory for the GEMM
// without first reading the lines they replace (the input transform of 256 channels at 64x64 writes 26 MB)
void stream_copy(float *dst, const float *src, std::int64_t n) {
#if defined(__AVX512F__)
  std::int64_t i = 0;
  for (; i < n && (reinterpret_cast<std::uintptr_t>(dst + i) & 63); ++i) dst[i] = src[i];
  for (; i + 16 <= n; i += 16) _mm512_stream_ps(dst + i, _mm512_loadu_ps(src + i));
  for (; i < n; ++i) dst[i] = src[i];
#else
  std::memcpy(dst, src, n * sizeof(float));
#endif
}

// orders the non-temporal stores before the kernel returns
inline void store_fence() {
#if defined(__AVX512F__)
  _mm_sfence();
#endif
}

// fn(begin, end) over [0, count), split over up to THREADS threads, one per 64 K values of work
template <typename F>
void parallel(std::int64_t count, std::int64_t work, F fn) {
  native_common::parallel(THREADS, count, work, 16, fn);
}

using native_common::is_float32;
}  // namespace

// x (c, h, w) -> v (N*N, c, th, tw): v[PLANE[a, b], ch, i, j] = sum_pq b1[a, p] b1[b, q] xpad[ch, i*T + p, j*T + q],
// xpad the input zero-padded by PAD (and by whole tiles at the bottom and right). Channels go in blocks, so that each of the
// N*N planes gets a contiguous run of a block's points at a time: writing the N*N points of a tile straight to their
// planes touched a page per value (20 ms for 256 channels at 64x64 instead of 2). The window rows are de-interleaved
// by column modulo T, so that every window column of every tile is a contiguous run.
extern "C" int KERNEL(PolyIn)(int nparam, void **params, int *ndims, std::int64_t **shapes, const char **dtypes,
                              void *stream, void *extra) {
  if (nparam != 2 || ndims[0] != 3 || ndims[1] != 4 || !is_float32(dtypes[0])) return 1;
  const float *x = static_cast<const float *>(params[0]);
  float *v = static_cast<float *>(params[1]);
  const std::int64_t c = shapes[0][0], h = shapes[0][1], w = shapes[0][2];
  const std::int64_t th = shapes[1][2], tw = shapes[1][3], tiles = th * tw;
  if (shapes[1][0] != N * N || shapes[1][1] != c) return 1;
  // padded column u (input column u - 1) of a window row is kept at (u % T) * tw1 + u / T
  const std::int64_t tw1 = tw + 1, wd = T * tw1;
  const std::int64_t cb = std::max<std::int64_t>(1, BLOCK_FLOATS / (N * N * tiles));
  parallel(c, c * tiles * N * N, [&](std::int64_t c0, std::int64_t c1) {
    std::vector<float> pad(L * wd), rbuf(N * wd), blk(N * N * cb * tiles), prow(wd + PAD + w, 0.0f);
    float *__restrict__ ra = rbuf.data();
    for (std::int64_t cs = c0; cs < c1; cs += cb) {
      const std::int64_t nb = std::min(cb, c1 - cs), bstride = nb * tiles;
      for (std::int64_t ch = cs; ch < cs + nb; ++ch) {
        const float *xc = x + ch * h * w;
        float *__restrict__ bc = blk.data() + (ch - cs) * tiles;
        for (std::int64_t i = 0; i < th; ++i) {
          for (std::int64_t p = 0; p < L; ++p) {
            const std::int64_t row = i * T + p - PAD;
            float *__restrict__ dst = pad.data() + p * wd;
            if (row < 0 || row >= h) {
              std::memset(dst, 0, wd * sizeof(float));
              continue;
            }
            // prow[u] = x[row, u - PAD], zero outside the input
            std::memcpy(prow.data() + PAD, xc + row * w, w * sizeof(float));
            const float *__restrict__ pr = prow.data();
            for (std::int64_t ph = 0; ph < T; ++ph) {
#pragma omp simd
              for (std::int64_t m = 0; m < tw1; ++m) dst[ph * tw1 + m] = pr[m * T + ph];
            }
          }
          IN_WINDOW_ROWS
#pragma omp simd
          for (std::int64_t s = 0; s < wd; ++s) {
            IN_ROWS
          }
          for (std::int64_t a = 0; a < N; ++a) {
            const float *__restrict__ r = ra + a * wd;
#pragma omp simd
            for (std::int64_t j = 0; j < tw; ++j) {
              IN_COLS
            }
          }
        }
      }
      for (std::int64_t ab = 0; ab < N * N; ++ab)
        stream_copy(v + (PLANE[ab] * c + cs) * tiles, blk.data() + ab * bstride, bstride);
    }
  });
  store_fence();
  return 0;
}

// w (c, k, 4, 4) if W_CK else (k, c, 4, 4) -> u (N*N / GROUP, k, GROUP*c): the point (a, b) of taps (ch, kk),
// sum_pq g1[a, p] g1[b, q] w[.., .., p, q], at u[PLANE[a, b] / GROUP, kk, (PLANE[a, b] % GROUP) * c + ch].
extern "C" int KERNEL(PolyWeight)(int nparam, void **params, int *ndims, std::int64_t **shapes, const char **dtypes,
                                  void *stream, void *extra) {
  if (nparam != 2 || ndims[0] != 4 || ndims[1] != 3 || !is_float32(dtypes[0])) return 1;
  const float *w = static_cast<const float *>(params[0]);
  float *uo = static_cast<float *>(params[1]);
  const std::int64_t c = shapes[0][W_CK ? 0 : 1], k = shapes[0][W_CK ? 1 : 0];
  if (shapes[0][2] != 4 || shapes[0][3] != 4 || shapes[1][0] * GROUP != N * N || shapes[1][1] != k ||
      shapes[1][2] != GROUP * c)
    return 1;
  parallel(k, k * c * N * N, [&](std::int64_t k0, std::int64_t k1) {
    std::vector<float> tbuf(16 * c), rbuf(N * 4 * c), ubuf(N * N * c);
    float *__restrict__ wt = tbuf.data();
    float *__restrict__ wr = rbuf.data();
    float *__restrict__ ub = ubuf.data();
    for (std::int64_t kk = k0; kk < k1; ++kk) {
      for (std::int64_t ch = 0; ch < c; ++ch) {
        const float *taps = w + (W_CK ? ch * k + kk : kk * c + ch) * 16;
        for (std::int64_t tap = 0; tap < 16; ++tap) wt[tap * c + ch] = taps[tap];
      }
      for (std::int64_t q = 0; q < 4; ++q) {
#pragma omp simd
        for (std::int64_t ch = 0; ch < c; ++ch) {
          W_ROWS
        }
      }
      for (std::int64_t a = 0; a < N; ++a) {
#pragma omp simd
        for (std::int64_t ch = 0; ch < c; ++ch) {
          W_COLS
        }
      }
      for (std::int64_t ab = 0; ab < N * N; ++ab)
        stream_copy(uo + ((PLANE[ab] / GROUP) * k + kk) * GROUP * c + (PLANE[ab] % GROUP) * c, ub + ab * c, c);
    }
  });
  store_fence();
  return 0;
}

// m (NO*NO, k, th, tw) -> y (k, th*TO, tw*TO): y[kk, i*TO + r, j*TO + s] = sum_ab at[r, a] at[s, b] m[a, b, kk, i, j]
extern "C" int KERNEL(PolyOut)(int nparam, void **params, int *ndims, std::int64_t **shapes, const char **dtypes,
                               void *stream, void *extra) {
  if (nparam != 2 || ndims[0] != 4 || ndims[1] != 3 || !is_float32(dtypes[0])) return 1;
  const float *m = static_cast<const float *>(params[0]);
  float *y = static_cast<float *>(params[1]);
  const std::int64_t k = shapes[0][1], th = shapes[0][2], tw = shapes[0][3], tiles = th * tw;
  const std::int64_t oh = th * TO, ow = tw * TO;
  if (shapes[0][0] != NO * NO || shapes[1][0] != k || shapes[1][1] != oh || shapes[1][2] != ow) return 1;
  const std::int64_t kb = std::max<std::int64_t>(1, BLOCK_FLOATS / (NO * NO * tiles));
  parallel(k, k * tiles * NO * NO, [&](std::int64_t k0, std::int64_t k1) {
    std::vector<float> blk(NO * NO * kb * tiles), qbuf(NO * TO * tw), zbuf(TO * tw);
    float *__restrict__ q = qbuf.data();
    float *__restrict__ zz = zbuf.data();
    for (std::int64_t ks = k0; ks < k1; ks += kb) {
      const std::int64_t nb = std::min(kb, k1 - ks), bstride = nb * tiles;
      for (std::int64_t ab = 0; ab < NO * NO; ++ab)
        std::memcpy(blk.data() + ab * bstride, m + (ab * k + ks) * tiles, bstride * sizeof(float));
      for (std::int64_t kk = ks; kk < ks + nb; ++kk) {
        const float *bk = blk.data() + (kk - ks) * tiles;
        for (std::int64_t i = 0; i < th; ++i) {
          for (std::int64_t a = 0; a < NO; ++a) {
            OUT_POINT_ROWS
#pragma omp simd
            for (std::int64_t j = 0; j < tw; ++j) {
              OUT_COLS
            }
          }
          for (std::int64_t r = 0; r < TO; ++r) {
            for (std::int64_t s = 0; s < TO; ++s) {
              float *__restrict__ z = zz + s * tw;
              switch (r) {
                OUT_ROW_CASES
              }
            }
            float *__restrict__ yr = y + (kk * oh + i * TO + r) * ow;
            for (std::int64_t j = 0; j < tw; ++j)
              for (std::int64_t s = 0; s < TO; ++s) yr[j * TO + s] = zz[s * tw + j];
          }
        }
      }
    }
  });
  return 0;
}
