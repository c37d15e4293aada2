// Augmentation: RandomResizedCrop's boxes follow torchvision's rules, and
// Augment keeps shapes, is reproducible and leaves the data alone when off.
#include "qat/augment.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace autoq::qat {
namespace {

TEST(AugmentTest, ResizedCropBoxesStayInsideWithTheirAreaAndRatio) {
  std::mt19937_64 rng(1);
  double smallest = 1, sum = 0;
  const int draws = 2000;
  for (int i = 0; i < draws; ++i) {
    const CropBox b = SampleResizedCrop(32, 48, 0.08, rng);
    ASSERT_GE(b.top, 0);
    ASSERT_GE(b.left, 0);
    ASSERT_GT(b.height, 0);
    ASSERT_GT(b.width, 0);
    ASSERT_LE(b.top + b.height, 32);
    ASSERT_LE(b.left + b.width, 48);
    const double share = static_cast<double>(b.height * b.width) / (32 * 48);
    const double ratio = static_cast<double>(b.width) / b.height;
    // Rounding to whole pixels moves both a little.
    EXPECT_GE(share, 0.08 * 0.8) << i;
    EXPECT_GE(ratio, 0.75 * 0.8) << i;
    EXPECT_LE(ratio, 4.0 / 3.0 * 1.25) << i;
    smallest = std::min(smallest, share);
    sum += share;
  }
  // The draws cover the range, not just whole images.
  EXPECT_LT(smallest, 0.15);
  EXPECT_GT(sum / draws, 0.35);
  EXPECT_LT(sum / draws, 0.75);
  // A very wide image that no draw fits: the center crop at ratio 4/3.
  const CropBox wide = SampleResizedCrop(4, 400, 1.0, rng);
  EXPECT_EQ(wide.height, 4);
  EXPECT_EQ(wide.width, 5);
  EXPECT_EQ(wide.left, (400 - 5) / 2);
}

TEST(AugmentTest, RandomResizedCropKeepsShapeAndIsReproducible) {
  at::manual_seed(2);
  const at::Tensor x = at::rand({6, 3, 16, 16});
  QatRecipe r;
  std::mt19937_64 off(7);
  EXPECT_TRUE(Augment(r, x, off).is_same(x));  // nothing on: untouched
  r.random_resized_crop = 0.08;
  std::mt19937_64 a(7), b(7);
  const at::Tensor ya = Augment(r, x, a);
  const at::Tensor yb = Augment(r, x, b);
  EXPECT_EQ(ya.sizes(), x.sizes());
  EXPECT_TRUE(at::equal(ya, yb));
  EXPECT_FALSE(at::allclose(ya, x));
  // Bilinear resizing of a constant image is that constant.
  const at::Tensor flat = at::full({4, 1, 10, 12}, 0.25);
  std::mt19937_64 c(3);
  EXPECT_TRUE(at::allclose(Augment(r, flat, c), flat));
}

TEST(AugmentTest, RecipeRejectsAreaSharesOutOfRange) {
  QatRecipe r;
  r.random_resized_crop = 1.5;
  EXPECT_FALSE(ValidateRecipe(r).ok());
  r.random_resized_crop = 0.001;
  EXPECT_FALSE(ValidateRecipe(r).ok());
  r.random_resized_crop = 0.08;
  EXPECT_TRUE(ValidateRecipe(r).ok());
}

}  // namespace
}  // namespace autoq::qat
