#include "qat/augment.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace autoq::qat {
namespace {

double Uniform(std::mt19937_64& rng, double lo, double hi) {
  return std::uniform_real_distribution<double>(lo, hi)(rng);
}

}  // namespace

CropBox SampleResizedCrop(int64_t h, int64_t w, double min_scale,
                          std::mt19937_64& rng) {
  const double area = static_cast<double>(h) * static_cast<double>(w);
  const double lo_ratio = 3.0 / 4.0, hi_ratio = 4.0 / 3.0;
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * Uniform(rng, min_scale, 1.0);
    const double ratio =
        std::exp(Uniform(rng, std::log(lo_ratio), std::log(hi_ratio)));
    const auto cw = static_cast<int64_t>(std::lround(std::sqrt(target * ratio)));
    const auto ch = static_cast<int64_t>(std::lround(std::sqrt(target / ratio)));
    if (cw > 0 && cw <= w && ch > 0 && ch <= h) {
      CropBox b;
      b.height = ch;
      b.width = cw;
      b.top = std::uniform_int_distribution<int64_t>(0, h - ch)(rng);
      b.left = std::uniform_int_distribution<int64_t>(0, w - cw)(rng);
      return b;
    }
  }
  CropBox b;
  const double in_ratio = static_cast<double>(w) / static_cast<double>(h);
  if (in_ratio < lo_ratio) {
    b.width = w;
    b.height = std::max<int64_t>(1, std::lround(w / lo_ratio));
  } else if (in_ratio > hi_ratio) {
    b.height = h;
    b.width = std::max<int64_t>(1, std::lround(h * hi_ratio));
  } else {
    b.width = w;
    b.height = h;
  }
  b.top = (h - b.height) / 2;
  b.left = (w - b.width) / 2;
  return b;
}

at::Tensor Augment(const QatRecipe& r, at::Tensor x, std::mt19937_64& rng) {
  if (x.dim() != 4) return x;
  if (r.hflip) {
    std::vector<uint8_t> flip(static_cast<size_t>(x.size(0)));
    for (uint8_t& f : flip) f = rng() & 1;
    at::Tensor mask = at::tensor(flip, at::kByte).to(x.device()).to(at::kBool);
    x = at::where(mask.view({-1, 1, 1, 1}), x.flip({3}), x);
  }
  if (r.crop_pad > 0) {
    const int64_t p = r.crop_pad, h = x.size(2), w = x.size(3);
    const int64_t dy = static_cast<int64_t>(rng() % (2 * p + 1));
    const int64_t dx = static_cast<int64_t>(rng() % (2 * p + 1));
    x = at::constant_pad_nd(x, {p, p, p, p}, 0.0)
            .slice(2, dy, dy + h)
            .slice(3, dx, dx + w)
            .contiguous(x.suggest_memory_format());
  }
  if (r.random_resized_crop > 0) {
    const int64_t h = x.size(2), w = x.size(3);
    std::vector<at::Tensor> out;
    out.reserve(static_cast<size_t>(x.size(0)));
    for (int64_t i = 0; i < x.size(0); ++i) {
      const CropBox b = SampleResizedCrop(h, w, r.random_resized_crop, rng);
      at::Tensor crop = x.slice(0, i, i + 1)
                            .slice(2, b.top, b.top + b.height)
                            .slice(3, b.left, b.left + b.width);
      out.push_back(b.height == h && b.width == w
                        ? crop
                        : at::upsample_bilinear2d(crop, {h, w},
                                                  /*align_corners=*/false));
    }
    x = at::cat(out).contiguous(x.suggest_memory_format());
  }
  return x;
}

}  // namespace autoq::qat
