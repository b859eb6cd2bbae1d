// Small helpers shared by edgevisor-bench's benchmarks.
#pragma once

#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace edgevisor::bench {

struct Stats {
  double median, min, max;
};
inline Stats Summarize(std::vector<double> v) {
  if (v.empty()) return {0, 0, 0};
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  const double med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  return {med, v.front(), v.back()};
}

inline std::string Arg(std::map<std::string, std::string>& opts, const std::string& k,
                       const std::string& def) {
  auto it = opts.find(k);
  return it == opts.end() ? def : it->second;
}

// Seconds on the monotonic clock.
inline double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace edgevisor::bench
