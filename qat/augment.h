// Training-time augmentation of a fine-tune's batches (QatRecipe's hflip,
// crop_pad and random_resized_crop), drawn from the epoch's seeded
// generator so that a fine-tune stays reproducible.
//
// Thread-safety: reentrant; the generator is the caller's.
#ifndef AUTOQ_QAT_AUGMENT_H_
#define AUTOQ_QAT_AUGMENT_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <random>

#include "qat/recipe.h"

namespace autoq::qat {

// A crop of an image: rows [top, top + height), columns [left, left + width).
struct CropBox {
  int64_t top = 0, left = 0, height = 0, width = 0;
};

// torchvision's RandomResizedCrop.get_params for an h x w image: up to 10
// draws of an area share in [min_scale, 1] and an aspect ratio in
// [3/4, 4/3] (log-uniform), the first that fits placed uniformly; else the
// center crop at the nearest allowed ratio.
CropBox SampleResizedCrop(int64_t h, int64_t w, double min_scale,
                          std::mt19937_64& rng);

// `x` (N x C x H x W, normalized float) augmented as `recipe` asks: half of
// the batch mirrored (hflip); one random shift of up to crop_pad pixels for
// the batch (zero padded); per image a RandomResizedCrop resized back to
// H x W (bilinear). Returns `x` itself when nothing is on.
at::Tensor Augment(const QatRecipe& recipe, at::Tensor x,
                   std::mt19937_64& rng);

}  // namespace autoq::qat

#endif  // AUTOQ_QAT_AUGMENT_H_
