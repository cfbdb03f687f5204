// What the native kernels share (src/common/native.py puts it in front of every library's source).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

namespace native_common {
// fn(begin, end) over [0, count), on up to `threads` threads (the calling one among them): one per 2^shift units
// of `work`, so that small calls stay on the calling thread
template <typename F>
void parallel(std::int64_t threads, std::int64_t count, std::int64_t work, int shift, F fn) {
  const std::int64_t parts = std::min<std::int64_t>(threads, std::min<std::int64_t>(count, work >> shift));
  if (parts < 2) {
    fn(0, count);
    return;
  }
  std::vector<std::thread> others;
  for (std::int64_t p = 1; p < parts; ++p)
    others.emplace_back([&, p] { fn(count * p / parts, count * (p + 1) / parts); });
  fn(0, count / parts);
  for (auto &th : others) th.join();
}

inline bool is_float32(const char *dtype) { return std::strcmp(dtype, "float32") == 0; }
}  // namespace native_common
