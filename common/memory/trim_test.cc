#include "common/memory/trim.h"

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace polder {
namespace memory {
namespace {

long RssKiB() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.substr(6).c_str());
  }
  return -1;
}

// Many small blocks (below mmap's threshold) touched and freed on another thread, whose arena
// keeps them: trimming gives most of them back.
TEST(TrimTest, FreedArenaMemoryGoesBackToTheSystem) {
  const long before = RssKiB();
  std::thread([] {
    std::vector<void*> blocks;
    for (int i = 0; i < 200000; ++i) {
      void* p = std::malloc(1024);
      std::memset(p, 1, 1024);
      blocks.push_back(p);
    }
    // Keep every 100th block so the heap cannot simply shrink from its top.
    for (size_t i = 0; i < blocks.size(); ++i) {
      if (i % 100 != 0) std::free(blocks[i]);
    }
  }).join();
  const long peak = RssKiB();
  ASSERT_GT(peak - before, 100 * 1024) << "the blocks were touched";
  EXPECT_GT(FreeHeapBytes(), size_t{100} << 20);
  EXPECT_TRUE(ReturnFreeMemory(size_t{32} << 20));
  EXPECT_LT(RssKiB() - before, (peak - before) / 2) << "before " << before << " peak " << peak;
  EXPECT_FALSE(ReturnFreeMemory(size_t{1} << 40)) << "nothing to do under the threshold";
}

}  // namespace
}  // namespace memory
}  // namespace polder
