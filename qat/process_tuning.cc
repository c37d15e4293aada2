#include "qat/process_tuning.h"

#include <malloc.h>

namespace autoq::qat {

void TuneProcessForTraining() {
  constexpr int kOneGiB = 1 << 30;
  mallopt(M_MMAP_THRESHOLD, kOneGiB);
  mallopt(M_TRIM_THRESHOLD, kOneGiB);
}

}  // namespace autoq::qat
