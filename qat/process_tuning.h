// Process-wide settings for training throughput, called once at start-up by
// the programs that train (autoq, benchmarks, workers).
#ifndef AUTOQ_QAT_PROCESS_TUNING_H_
#define AUTOQ_QAT_PROCESS_TUNING_H_

namespace autoq::qat {

// Keeps freed activation buffers in glibc's heap instead of returning them
// to the kernel: every training step allocates the same large tensors, and
// fresh pages cost a page fault and a clear each (about 20% of a CPU step
// on small CNNs).
void TuneProcessForTraining();

}  // namespace autoq::qat

#endif  // AUTOQ_QAT_PROCESS_TUNING_H_
