// The search's encoding of a per-layer bit-width configuration.
//
// A chromosome holds one weight bit-width per free layer (unmasked
// quantizable layers, minus the first and last when they are pinned to 8
// bits) and, when activation bits are searched, one activation bit-width
// per free layer after those. Genes are integers in [min_bits, max_bits].
//
// Thread-safety: immutable after construction.
#ifndef AUTOQ_SEARCH_CHROMOSOME_H_
#define AUTOQ_SEARCH_CHROMOSOME_H_

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "evaluator/job_config.h"
#include "qat/quant_config.h"

namespace autoq::search {

class Encoding {
 public:
  // `num_layers`: genes of the model analysis (unmasked layers).
  Encoding(int num_layers, const evaluator::SearchOptions& options);

  int num_layers() const { return num_layers_; }
  // Length of a chromosome.
  int dimension() const;
  int min_bits() const { return min_bits_; }
  int max_bits() const { return max_bits_; }

  // Bits of every layer for `genes` (values are clamped to the bounds).
  std::vector<qat::LayerBits> Decode(const std::vector<int>& genes) const;
  // The genes of a uniform configuration: every searched bit-width = bits.
  std::vector<int> Uniform(int bits) const;
  // Every layer at `bits` (weights and, when searched or fixed non-float,
  // activations): the uniform configuration as a model sees it.
  std::vector<qat::LayerBits> UniformBits(int bits) const;

  // The genes of per-layer weight bits (one per layer of the model,
  // clamped to the bounds); pinned layers are dropped, searched activation
  // genes are max_bits.
  std::vector<int> EncodeWeights(const std::vector<int>& wbits) const;

  // The initial population. Without `seeds`: every uniform configuration
  // (min..max bits) first. With seeds (chromosomes, e.g. knapsack
  // solutions): uniform configurations and the seeds in turn, so both get
  // about half of a small population; the uniform ones start with max_bits
  // and go outward from just below the middle (8, 4, 5, 3, 6, 2, 7 for
  // 2..8), where the smallest accurate ones usually are. Then offspring of
  // random pairs of those (uniform crossover and a +-1 mutation per gene
  // with probability 1/dimension), without repeats where the space allows.
  // `size` >= 1.
  std::vector<std::vector<int>> InitialPopulation(
      int size, uint32_t seed,
      const std::vector<std::vector<int>>& seeds = {}) const;

 private:
  int num_layers_;
  int min_bits_, max_bits_;
  bool search_abits_;
  int fixed_abits_;
  bool pinned_;  // first and last layer at 8 bits
  std::vector<int> free_layers_;
};

}  // namespace autoq::search

#endif  // AUTOQ_SEARCH_CHROMOSOME_H_
