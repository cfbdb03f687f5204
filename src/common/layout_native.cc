// Layout kernels of the training graphs' convolutions (SwapLeading in src/common/fast_conv.py, Adjoint in
// src/common/phase_conv.py) as MindSpore aot Custom kernels for the CPU: copies that MindSpore's CPU ops do either
// slowly (split + concat, ReverseV2) or with a Transpose kernel, which keeps an index of 8 bytes per element of its
// output for the life of a jit graph. src/common/native.py compiles this file after native_common.h, once per
// machine.

namespace {
constexpr std::int64_t THREADS = 2;  // the copies are bound by memory; two threads saturate it on the test machine
constexpr std::int64_t BLOCK = 16;   // rows of each axis per block of the small-row swap

// fn(begin, end) over [0, count), split over up to THREADS threads, one per 1 MB to move
template <typename F>
void parallel(std::int64_t count, std::int64_t floats, F fn) {
  native_common::parallel(THREADS, count, floats, 18, fn);
}

using native_common::is_float32;

// fn(j, i) for every j in [0, b) and i in [0, a), in blocks of BLOCK x BLOCK (the blocks of j split over the
// threads), so that the lines a block reads are used up before they are evicted; `floats`: the values moved
template <typename F>
void blocked(std::int64_t b, std::int64_t a, std::int64_t floats, F fn) {
  parallel((b + BLOCK - 1) / BLOCK, floats, [&](std::int64_t q0, std::int64_t q1) {
    for (std::int64_t q = q0; q < q1; ++q) {
      const std::int64_t j0 = q * BLOCK, j1 = std::min(b, j0 + BLOCK);
      for (std::int64_t i0 = 0; i0 < a; i0 += BLOCK) {
        const std::int64_t i1 = std::min(a, i0 + BLOCK);
        for (std::int64_t j = j0; j < j1; ++j)
          for (std::int64_t i = i0; i < i1; ++i) fn(j, i);
      }
    }
  });
}
}  // namespace

// x (a, b, ...) -> y (b, a, ...): y[j, i, :] = x[i, j, :], the trailing axes as rows of r values. Long rows are copied
// whole; short ones (a weight's 3x3 taps) in blocks (blocked).
extern "C" int SwapLeading(int nparam, void **params, int *ndims, std::int64_t **shapes, const char **dtypes,
                           void *stream, void *extra) {
  if (nparam != 2 || ndims[0] < 2 || ndims[1] != ndims[0] || !is_float32(dtypes[0]) || !is_float32(dtypes[1]))
    return 1;
  const std::int64_t a = shapes[0][0], b = shapes[0][1];
  std::int64_t r = 1;
  for (int d = 2; d < ndims[0]; ++d) {
    if (shapes[1][d] != shapes[0][d]) return 1;
    r *= shapes[0][d];
  }
  if (shapes[1][0] != b || shapes[1][1] != a) return 1;
  const float *x = static_cast<const float *>(params[0]);
  float *y = static_cast<float *>(params[1]);
  if (r >= 64) {
    parallel(b, a * b * r, [&](std::int64_t j0, std::int64_t j1) {
      for (std::int64_t j = j0; j < j1; ++j)
        for (std::int64_t i = 0; i < a; ++i) std::memcpy(y + (j * a + i) * r, x + (i * b + j) * r, r * sizeof(float));
    });
    return 0;
  }
  blocked(b, a, a * b * r, [&](std::int64_t j, std::int64_t i) {
    const float *src = x + (i * b + j) * r;
    float *dst = y + (j * a + i) * r;
    for (std::int64_t e = 0; e < r; ++e) dst[e] = src[e];
  });
  return 0;
}

// The taps of the four output phases of the adjoint of a 3x3 stride-2 conv (src/common/phase_conv.py, Adjoint):
// w (a, c, 3, 3) -> k00 (c, a, 1, 1), k01 (c, a, 1, 2), k10 (c, a, 2, 1), k11 (c, a, 2, 2), the phases' taps of the
// weight transposed (a <-> c) and flipped: k[c, a, i, j] = w[a, c, 2 - i, 2 - j] at rows (1) or (0, 2) and columns
// (1) or (0, 2) of the flipped kernel.
extern "C" int PhaseTaps(int nparam, void **params, int *ndims, std::int64_t **shapes, const char **dtypes,
                         void *stream, void *extra) {
  if (nparam != 5 || ndims[0] != 4 || !is_float32(dtypes[0])) return 1;
  const std::int64_t a = shapes[0][0], c = shapes[0][1];
  if (shapes[0][2] != 3 || shapes[0][3] != 3) return 1;
  const std::int64_t taps[4][2] = {{1, 1}, {1, 2}, {2, 1}, {2, 2}};
  for (int o = 0; o < 4; ++o)
    if (ndims[1 + o] != 4 || !is_float32(dtypes[1 + o]) || shapes[1 + o][0] != c || shapes[1 + o][1] != a ||
        shapes[1 + o][2] != taps[o][0] || shapes[1 + o][3] != taps[o][1])
      return 1;
  const float *w = static_cast<const float *>(params[0]);
  float *k00 = static_cast<float *>(params[1]), *k01 = static_cast<float *>(params[2]);
  float *k10 = static_cast<float *>(params[3]), *k11 = static_cast<float *>(params[4]);
  blocked(c, a, a * c * 9, [&](std::int64_t ch, std::int64_t i) {
    const float *s = w + (i * c + ch) * 9;  // s[3 * row + col]
    const std::int64_t o = ch * a + i;
    k00[o] = s[4];
    k01[2 * o] = s[5], k01[2 * o + 1] = s[3];
    k10[2 * o] = s[7], k10[2 * o + 1] = s[1];
    k11[4 * o] = s[8], k11[4 * o + 1] = s[6], k11[4 * o + 2] = s[2], k11[4 * o + 3] = s[0];
  });
  return 0;
}
