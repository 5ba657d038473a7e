#include "common/memory/trim.h"

#include <malloc.h>

namespace polder {
namespace memory {

size_t FreeHeapBytes() {
  struct mallinfo2 info = mallinfo2();
  return info.fordblks;
}

bool ReturnFreeMemory(size_t threshold_bytes) {
  if (FreeHeapBytes() <= threshold_bytes) return false;
  malloc_trim(0);
  return true;
}

}  // namespace memory
}  // namespace polder
