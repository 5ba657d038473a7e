#include "common/memory/trim.h"

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

#ifdef POLDER_TRIM_TEST_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

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
// trim_test runs under glibc's malloc, trim_jemalloc_test (POLDER_TRIM_TEST_JEMALLOC, linked
// with jemalloc as the services are) under jemalloc's.
TEST(TrimTest, KnowsItsAllocator) {
#ifdef POLDER_TRIM_TEST_JEMALLOC
  EXPECT_TRUE(JemallocIsAllocator());
#else
  EXPECT_FALSE(JemallocIsAllocator());
#endif
}

TEST(TrimTest, FreedArenaMemoryGoesBackToTheSystem) {
#ifdef POLDER_TRIM_TEST_JEMALLOC
  // jemalloc purges freed pages by itself after dirty_decay_ms; for arenas made from now on
  // (the thread's below) it must not, so the purge seen is ReturnFreeMemory's.
  ssize_t never = -1;
  ASSERT_EQ(mallctl("arenas.dirty_decay_ms", nullptr, nullptr, &never, sizeof never), 0);
  ASSERT_EQ(mallctl("arenas.muzzy_decay_ms", nullptr, nullptr, &never, sizeof never), 0);
#endif
  const long before = RssKiB();
  long peak = 0, after = 0;
  size_t free_bytes = 0;
  bool trimmed = false;
  // All on one thread that lives on meanwhile, as the services' threads do (jemalloc returns a
  // thread's pages when it exits).
  std::thread([&] {
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
    peak = RssKiB();
    free_bytes = FreeHeapBytes();
    trimmed = ReturnFreeMemory(size_t{32} << 20);
    after = RssKiB();
  }).join();
  ASSERT_GT(peak - before, 100 * 1024) << "the blocks were touched";
  EXPECT_GT(free_bytes, size_t{100} << 20);
  EXPECT_TRUE(trimmed);
  EXPECT_LT(after - before, (peak - before) / 2) << "before " << before << " peak " << peak;
  EXPECT_FALSE(ReturnFreeMemory(size_t{1} << 40)) << "nothing to do under the threshold";
}

}  // namespace
}  // namespace memory
}  // namespace polder
