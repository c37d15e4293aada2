#include "qat/process_tuning.h"

#include <malloc.h>

#include <cstdlib>

namespace autoq::qat {

void TuneProcessForTraining() {
  constexpr int kOneGiB = 1 << 30;
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr) mallopt(M_ARENA_MAX, 1);
  mallopt(M_MMAP_THRESHOLD, kOneGiB);
  mallopt(M_TRIM_THRESHOLD, kOneGiB);
}

}  // namespace autoq::qat
