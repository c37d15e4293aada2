// Process-wide settings for training throughput, called once at start-up by
// the programs that train (autoq, benchmarks, workers).
#ifndef AUTOQ_QAT_PROCESS_TUNING_H_
#define AUTOQ_QAT_PROCESS_TUNING_H_

namespace autoq::qat {

// Keeps freed activation buffers in glibc's heap instead of returning them
// to the kernel: every training step allocates the same large tensors, and
// fresh pages cost a page fault and a clear each (about 20% of a CPU step
// on small CNNs). One malloc arena, too (unless MALLOC_ARENA_MAX is set):
// work off the main thread (the local evaluator's and the worker's task
// threads) otherwise gets a per-thread arena that gives freed memory back
// to the kernel after every step whatever the thresholds. On 2 cores that
// put a quarter of a job's CPU time in the kernel (1.6 million page faults
// in the smoke job, 72 million in the default one) and made the smoke job
// 1.6x slower (42 s -> 27 s). Tensor work allocates from few threads, so
// the shared arena's lock costs nothing measurable. Call before any thread
// starts.
void TuneProcessForTraining();

}  // namespace autoq::qat

#endif  // AUTOQ_QAT_PROCESS_TUNING_H_
