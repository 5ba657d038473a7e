// Giving freed heap memory back to the system.
//
// glibc keeps what a burst frees (thousands of connections closed, a flood of large headers) in
// its arenas, one per thread that allocated it, so a process's RSS after bursts on several
// listeners is the sum of their peaks. The services call ReturnFreeMemory from their background
// loops: when more than `threshold_bytes` lie free in the arenas, malloc_trim hands the free
// pages back (a walk of the free lists; done off every request path). Under jemalloc, which the
// services link (ADR 0023 §2), the same call purges its arenas' unused pages.
#ifndef POLDER_COMMON_MEMORY_TRIM_H_
#define POLDER_COMMON_MEMORY_TRIM_H_

#include <cstddef>

namespace polder {
namespace memory {

// Whether jemalloc is the process's allocator (the services link it, ADR 0023 §2); otherwise
// glibc's malloc.
bool JemallocIsAllocator();

// Bytes allocated from the system but free in malloc's arenas (jemalloc: resident but not
// allocated, i.e. freed pages not yet purged).
size_t FreeHeapBytes();

// Trims the arenas (jemalloc: purges every arena) if more than `threshold_bytes` are free;
// returns whether it trimmed.
bool ReturnFreeMemory(size_t threshold_bytes = size_t{32} << 20);

}  // namespace memory
}  // namespace polder

#endif  // POLDER_COMMON_MEMORY_TRIM_H_
