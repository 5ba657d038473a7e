#include "common/memory/trim.h"

#include <malloc.h>

#include <cstdint>

// jemalloc's control interface, when jemalloc is the process's allocator (the services link it,
// ADR 0023 §2); null otherwise (a weak reference: tests and tools keep glibc's malloc).
extern "C" int mallctl(const char* name, void* oldp, size_t* oldlenp, void* newp, size_t newlen)
    __attribute__((weak));

namespace polder {
namespace memory {
namespace {

// A jemalloc statistic (size_t), refreshed first; 0 if it cannot be read.
size_t JemallocStat(const char* name) {
  uint64_t epoch = 1;
  size_t epoch_len = sizeof epoch;
  if (mallctl("epoch", &epoch, &epoch_len, &epoch, epoch_len) != 0) return 0;
  size_t value = 0;
  size_t len = sizeof value;
  return mallctl(name, &value, &len, nullptr, 0) == 0 ? value : 0;
}

}  // namespace

bool JemallocIsAllocator() { return mallctl != nullptr; }

size_t FreeHeapBytes() {
  if (JemallocIsAllocator()) {
    // Pages jemalloc holds resident beyond what is allocated: freed but not yet purged.
    const size_t resident = JemallocStat("stats.resident");
    const size_t allocated = JemallocStat("stats.allocated");
    return resident > allocated ? resident - allocated : 0;
  }
  struct mallinfo2 info = mallinfo2();
  return info.fordblks;
}

bool ReturnFreeMemory(size_t threshold_bytes) {
  if (FreeHeapBytes() <= threshold_bytes) return false;
  if (JemallocIsAllocator()) {
    // Purges every arena's unused dirty pages now (jemalloc would otherwise let them decay over
    // its dirty_decay_ms, and only while it is being called).
    return mallctl(
               "arena." /* MALLCTL_ARENAS_ALL */ "4096.purge", nullptr, nullptr, nullptr, 0) == 0;
  }
  malloc_trim(0);
  return true;
}

}  // namespace memory
}  // namespace polder
