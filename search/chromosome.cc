#include "search/chromosome.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace autoq::search {

Encoding::Encoding(int num_layers, const evaluator::SearchOptions& options)
    : num_layers_(num_layers),
      min_bits_(options.min_bits),
      max_bits_(options.max_bits),
      search_abits_(options.search_activation_bits),
      fixed_abits_(options.activation_bits),
      pinned_(options.pin_first_last && num_layers >= 3) {
  for (int i = 0; i < num_layers_; ++i) {
    if (pinned_ && (i == 0 || i == num_layers_ - 1)) continue;
    free_layers_.push_back(i);
  }
}

int Encoding::dimension() const {
  const int free = static_cast<int>(free_layers_.size());
  return search_abits_ ? 2 * free : free;
}

std::vector<qat::LayerBits> Encoding::Decode(
    const std::vector<int>& genes) const {
  const int pinned_abits = search_abits_ || fixed_abits_ != 0 ? 8 : 0;
  std::vector<qat::LayerBits> bits(
      static_cast<size_t>(num_layers_),
      qat::LayerBits{8, search_abits_ ? pinned_abits : fixed_abits_});
  const size_t free = free_layers_.size();
  auto clamp = [&](int v) { return std::clamp(v, min_bits_, max_bits_); };
  for (size_t i = 0; i < free && i < genes.size(); ++i) {
    qat::LayerBits& b = bits[static_cast<size_t>(free_layers_[i])];
    b.wbits = clamp(genes[i]);
    if (search_abits_ && free + i < genes.size()) {
      b.abits = clamp(genes[free + i]);
    }
  }
  return bits;
}

std::vector<int> Encoding::Uniform(int bits) const {
  return std::vector<int>(static_cast<size_t>(dimension()), bits);
}

std::vector<qat::LayerBits> Encoding::UniformBits(int bits) const {
  const int abits = search_abits_ || fixed_abits_ != 0
                        ? (search_abits_ ? bits : fixed_abits_)
                        : 0;
  return std::vector<qat::LayerBits>(static_cast<size_t>(num_layers_),
                                     qat::LayerBits{bits, abits});
}

std::vector<int> Encoding::EncodeWeights(const std::vector<int>& wbits) const {
  std::vector<int> genes(static_cast<size_t>(dimension()), max_bits_);
  for (size_t i = 0; i < free_layers_.size(); ++i) {
    const size_t layer = static_cast<size_t>(free_layers_[i]);
    if (layer < wbits.size()) {
      genes[i] = std::clamp(wbits[layer], min_bits_, max_bits_);
    }
  }
  return genes;
}

std::vector<std::vector<int>> Encoding::InitialPopulation(
    int size, uint32_t seed, const std::vector<std::vector<int>>& seeds) const {
  std::vector<std::vector<int>> pop;
  std::set<std::vector<int>> seen;
  auto add = [&](std::vector<int> genes) {
    if (static_cast<int>(pop.size()) >= size) return;
    if (seen.insert(genes).second) pop.push_back(std::move(genes));
  };
  if (seeds.empty()) {
    for (int b = min_bits_; b <= max_bits_; ++b) add(Uniform(b));
  } else {
    // max_bits (the accurate anchor), then outward from just below the
    // middle, where the smallest configurations inside a region of
    // interest usually are: 8, 4, 5, 3, 6, 2, 7 for 2..8.
    std::vector<int> order = {max_bits_};
    const int mid = (min_bits_ + max_bits_) / 2 - 1;
    for (int d = 0; static_cast<int>(order.size()) < max_bits_ - min_bits_ + 1;
         ++d) {
      for (int b : {mid - d, mid + d + 1}) {
        if (b >= min_bits_ && b < max_bits_ &&
            std::find(order.begin(), order.end(), b) == order.end()) {
          order.push_back(b);
        }
      }
    }
    size_t next_seed = 0;
    for (int b : order) {
      add(Uniform(b));
      while (next_seed < seeds.size() &&
             seen.count(seeds[next_seed]) != 0) {
        ++next_seed;
      }
      if (next_seed < seeds.size()) add(seeds[next_seed++]);
    }
    while (next_seed < seeds.size()) add(seeds[next_seed++]);
  }
  const int uniforms = static_cast<int>(pop.size());
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> parent(0, uniforms - 1);
  std::uniform_int_distribution<int> coin(0, 1);
  const int dim = dimension();
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const double p_mutate = dim > 0 ? 1.0 / dim : 0.0;
  int attempts = 0;
  while (static_cast<int>(pop.size()) < size) {
    const std::vector<int>& a = pop[static_cast<size_t>(parent(rng))];
    const std::vector<int>& b = pop[static_cast<size_t>(parent(rng))];
    std::vector<int> child(static_cast<size_t>(dim));
    for (size_t g = 0; g < child.size(); ++g) {
      child[g] = coin(rng) ? a[g] : b[g];
      if (unit(rng) < p_mutate) child[g] += coin(rng) ? 1 : -1;
      child[g] = std::clamp(child[g], min_bits_, max_bits_);
    }
    // Repeats are allowed only once the space seems exhausted.
    if (seen.insert(child).second || ++attempts > 1000) {
      pop.push_back(std::move(child));
    }
  }
  return pop;
}

}  // namespace autoq::search
