// Image folders: layout, splits, channel conversion, resize and crop, and
// the bad inputs (missing root, no classes, differing classes, corrupt
// images), on JPEG and PNG files the test writes itself.
#include "evaluator/image_folder.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "evaluator/dataset.h"
#include "evaluator/image_decode.h"
#include "evaluator/test_images.h"
#include "tests/testing.h"

namespace autoq::evaluator {
namespace {

namespace fs = std::filesystem;
using ::autoq::testing::TempDir;
using ::testing::HasSubstr;

// h x w pixels of `channels` (1, 3 or 4), each channel value from `f`.
std::vector<uint8_t> Pixels(int h, int w, int channels,
                            uint8_t (*f)(int y, int x, int c)) {
  std::vector<uint8_t> p(static_cast<size_t>(h * w * channels));
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      for (int c = 0; c < channels; ++c) {
        p[static_cast<size_t>((y * w + x) * channels + c)] = f(y, x, c);
      }
    }
  }
  return p;
}

void WritePng(const std::string& path, int h, int w, int channels,
              const std::vector<uint8_t>& pixels) {
  fs::create_directories(fs::path(path).parent_path());
  ASSERT_TRUE(test_images::WritePng(path, pixels.data(), h, w, channels))
      << path;
}

void WriteJpeg(const std::string& path, int h, int w, int channels,
               const std::vector<uint8_t>& pixels) {
  fs::create_directories(fs::path(path).parent_path());
  testing::WriteFile(path, test_images::EncodeJpeg(pixels.data(), h, w,
                                                   channels, /*quality=*/95));
}

uint8_t Solid(int, int, int c) { return c == 0 ? 10 : c == 1 ? 200 : 30; }
uint8_t Gray(int, int, int) { return 128; }
uint8_t HalfWhite(int, int x, int) { return x < 10 ? 0 : 255; }
uint8_t TopHalfBlack(int y, int, int) { return y < 10 ? 0 : 255; }
uint8_t RampAcross(int, int x, int) { return static_cast<uint8_t>(x / 257); }
uint8_t RampDown(int y, int, int) { return static_cast<uint8_t>(y / 257); }

// A flat folder: 3 classes with mixed sizes and formats, a gray PNG, an
// RGBA PNG, a text file, and an empty class folder.
std::string MakeFlatFolder(TempDir& tmp) {
  const std::string root = tmp.File("flat");
  for (int i = 0; i < 6; ++i) {
    WriteJpeg(absl::StrCat(root, "/cat/", i, ".jpg"), 30 + i, 40, 3,
              Pixels(30 + i, 40, 3, Solid));
    WritePng(absl::StrCat(root, "/dog/", i, ".png"), 20, 50 - i, 3,
             Pixels(20, 50 - i, 3, Solid));
    WriteJpeg(absl::StrCat(root, "/fox/", i, ".JPEG"), 16, 16, 3,
              Pixels(16, 16, 3, Solid));
  }
  WritePng(root + "/dog/gray.png", 24, 24, 1, Pixels(24, 24, 1, Gray));
  WritePng(root + "/dog/rgba.png", 24, 24, 4, Pixels(24, 24, 4, Solid));
  testing::WriteFile(root + "/fox/notes.txt", "not an image\n");
  fs::create_directories(root + "/emu");
  return root;
}

TEST(ImageFolderTest, ReadsClassesInSortedOrderAndFitsEveryImage) {
  TempDir tmp;
  const std::string root = MakeFlatFolder(tmp);
  ImageFolderOptions o;
  o.channels = 3;
  o.height = 12;
  o.width = 10;
  absl::StatusOr<ImageFolderData> d = ReadImageFolder(root, o);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->classes, (std::vector<std::string>{"cat", "dog", "emu", "fox"}));
  EXPECT_EQ(d->data.num_classes, 4);
  EXPECT_EQ(d->data.images.sizes(), (std::vector<int64_t>{20, 3, 12, 10}));
  EXPECT_EQ(d->ignored, 1);
  EXPECT_EQ(d->empty_classes, std::vector<std::string>{"emu"});
  // Labels follow the sorted folders: 6 cat, 8 dog, 6 fox.
  const at::Tensor counts = at::bincount(d->data.labels, {}, 4);
  EXPECT_EQ(counts[0].item<int64_t>(), 6);
  EXPECT_EQ(counts[1].item<int64_t>(), 8);
  EXPECT_EQ(counts[2].item<int64_t>(), 0);
  EXPECT_EQ(counts[3].item<int64_t>(), 6);
  // A solid PNG keeps its exact color after resize and crop; the gray
  // PNG becomes three equal channels; the RGBA one loses its alpha.
  const at::Tensor first_png = d->data.images[6];  // dog/0.png
  EXPECT_EQ(first_png[0].min().item<int>(), 10);
  EXPECT_EQ(first_png[1].max().item<int>(), 200);
  EXPECT_EQ(first_png[2].min().item<int>(), 30);
  const at::Tensor gray = d->data.images[12];  // dog/gray.png (sorted)
  EXPECT_EQ(gray.min().item<int>(), 128);
  EXPECT_EQ(gray.max().item<int>(), 128);
  const at::Tensor rgba = d->data.images[13];  // dog/rgba.png
  EXPECT_EQ(rgba[1].min().item<int>(), 200);
}

TEST(ImageFolderTest, ShorterSideResizedThenCenterCropped) {
  // 10 x 20, left half black, right half white, fitted to 6 x 6: the
  // height goes 10 -> 6, the width 20 -> 12, and the middle 6 columns
  // stay: 3 black, 3 white.
  Image image;
  image.height = 10;
  image.width = 20;
  image.channels = 1;
  image.pixels = Pixels(10, 20, 1, HalfWhite);
  const std::vector<uint8_t> out = FitImage(image, 1, 6, 6);
  ASSERT_EQ(out.size(), 36u);
  for (int y = 0; y < 6; ++y) {
    EXPECT_LT(out[static_cast<size_t>(y * 6 + 1)], 20) << y;
    EXPECT_GT(out[static_cast<size_t>(y * 6 + 4)], 235) << y;
  }
  // Color to gray by luma.
  Image color;
  color.height = color.width = 4;
  color.channels = 3;
  color.pixels = Pixels(4, 4, 3, Solid);
  const std::vector<uint8_t> g = FitImage(color, 1, 2, 2);
  EXPECT_EQ(g[0], 124);  // 0.299*10 + 0.587*200 + 0.114*30 = 123.8
}

TEST(ImageFolderTest, PortraitImagesAreCroppedVertically) {
  // 20 x 10, top half black, bottom half white, fitted to 6 x 6: the width
  // goes 10 -> 6, the height 20 -> 12, and the middle 6 rows stay.
  Image image;
  image.height = 20;
  image.width = 10;
  image.channels = 1;
  image.pixels = Pixels(20, 10, 1, TopHalfBlack);
  const std::vector<uint8_t> out = FitImage(image, 1, 6, 6);
  ASSERT_EQ(out.size(), 36u);
  for (int x = 0; x < 6; ++x) {
    EXPECT_LT(out[static_cast<size_t>(1 * 6 + x)], 20) << x;
    EXPECT_GT(out[static_cast<size_t>(4 * 6 + x)], 235) << x;
  }
}

TEST(ImageFolderTest, ExtremeAspectRatiosFitWithoutResizingTheWholeStrip) {
  // A 1 x 65535 strip at 224 x 224 would be 14.7 million columns wide
  // resized whole (13 GB of floats in the second pass); only the center
  // window is computed. The ramp's middle is 127.
  for (const bool across : {true, false}) {
    Image strip;
    strip.height = across ? 1 : 65535;
    strip.width = across ? 65535 : 1;
    strip.channels = 1;
    strip.pixels = Pixels(strip.height, strip.width, 1,
                          across ? RampAcross : RampDown);
    const std::vector<uint8_t> out = FitImage(strip, 3, 224, 224);
    ASSERT_EQ(out.size(), 3u * 224 * 224);
    for (uint8_t v : out) {
      ASSERT_GE(v, 126) << across;
      ASSERT_LE(v, 128) << across;
    }
  }
}

TEST(ImageFolderTest, FlatFolderIsCarvedIntoSplitsAtTheModelsShape) {
  TempDir tmp;
  const std::string root = MakeFlatFolder(tmp);
  absl::StatusOr<DataSpec> spec = ParseDataSpec("folder:" + root);
  ASSERT_TRUE(spec.ok()) << spec.status();
  SplitOptions split;
  split.val_size = 4;
  split.test_size = 5;
  split.input_shape = {1, 8, 8};  // a gray model
  absl::StatusOr<DatasetSplits> d = LoadDataset(*spec, split);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->test.size(), 5);
  EXPECT_EQ(d->val.size(), 4);
  EXPECT_EQ(d->train.size(), 11);
  EXPECT_EQ(d->train.images.sizes(), (std::vector<int64_t>{11, 1, 8, 8}));
  EXPECT_TRUE(d->val_carved);
  EXPECT_THAT(d->notes, ::testing::Contains(HasSubstr("emu")));
  // Without a size anywhere the folder cannot be read.
  split.input_shape.clear();
  EXPECT_EQ(LoadDataset(*spec, split).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ImageFolderTest, SplitFoldersAreUsedAndMustAgreeOnClasses) {
  TempDir tmp;
  const std::string root = tmp.File("split");
  for (const char* s : {"train", "val", "test"}) {
    for (const char* c : {"a", "b"}) {
      for (int i = 0; i < (std::string(s) == "train" ? 5 : 2); ++i) {
        WritePng(absl::StrCat(root, "/", s, "/", c, "/", i, ".png"), 9, 9, 3,
                 Pixels(9, 9, 3, Solid));
      }
    }
  }
  absl::StatusOr<DataSpec> spec = ParseDataSpec("folder:" + root + ";size=8");
  ASSERT_TRUE(spec.ok()) << spec.status();
  SplitOptions split;
  split.val_size = 3;
  absl::StatusOr<DatasetSplits> d = LoadDataset(*spec, split);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->train.size(), 10);  // nothing carved from train/
  EXPECT_EQ(d->val.size(), 4);
  EXPECT_EQ(d->test.size(), 4);
  EXPECT_FALSE(d->val_carved);
  EXPECT_EQ(d->train.images.sizes(), (std::vector<int64_t>{10, 3, 8, 8}));

  fs::rename(root + "/val/b", root + "/val/c");
  absl::StatusOr<DatasetSplits> bad = LoadDataset(*spec, split);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("differ from the training split"));
}

TEST(ImageFolderTest, BadInputGetsOneLineNamingTheFile) {
  TempDir tmp;
  ImageFolderOptions o;
  o.height = o.width = 8;
  EXPECT_EQ(ReadImageFolder(tmp.File("missing"), o).status().code(),
            absl::StatusCode::kNotFound);
  fs::create_directories(tmp.File("no_classes"));
  testing::WriteFile(tmp.File("no_classes/x.png"), "x");
  absl::StatusOr<ImageFolderData> none =
      ReadImageFolder(tmp.File("no_classes"), o);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(none.status().message()), HasSubstr("class folders"));

  // A truncated JPEG fails naming the file, or is skipped and counted.
  const std::string root = tmp.File("corrupt");
  WriteJpeg(root + "/a/good.jpg", 8, 8, 3, Pixels(8, 8, 3, Solid));
  WriteJpeg(root + "/a/bad.jpg", 8, 8, 3, Pixels(8, 8, 3, Solid));
  const std::string bytes = testing::ReadFile(root + "/a/bad.jpg");
  testing::WriteFile(root + "/a/bad.jpg", bytes.substr(0, 20));
  testing::WriteFile(root + "/a/fake.png", "definitely not a png");
  absl::StatusOr<ImageFolderData> failed = ReadImageFolder(root, o);
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(failed.status().message()), HasSubstr("bad.jpg"));
  o.skip_bad = true;
  absl::StatusOr<ImageFolderData> skipped = ReadImageFolder(root, o);
  ASSERT_TRUE(skipped.ok()) << skipped.status();
  EXPECT_EQ(skipped->skipped, 2);
  EXPECT_EQ(skipped->data.size(), 1);

  // Spec options are checked up front.
  for (const char* s :
       {"folder:", "folder:/x;size=0", "folder:/x;size=4x",
        "folder:/x;channels=2", "folder:/x;skip_bad=yes", "tensor:/x.pt;size=8",
        "folder:/x;norm=coco", "folder:/x;norm=imagenet;mean=0.5;std=0.5"}) {
    EXPECT_EQ(ParseDataSpec(s).status().code(),
              absl::StatusCode::kInvalidArgument)
        << s;
  }
  absl::StatusOr<DataSpec> ok =
      ParseDataSpec("folder:/x;size=32x24;channels=1;skip_bad=1;norm=cifar");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->image_height, 32);
  EXPECT_EQ(ok->image_width, 24);
  EXPECT_EQ(ok->image_channels, 1);
  EXPECT_TRUE(ok->skip_bad);
  EXPECT_EQ(ok->mean.size(), 3u);
}

// A header may declare any size: a huge one is refused before allocation.
TEST(ImageDecodeTest, HugeDeclaredSizesAreRefusedNotAllocated) {
  const std::vector<uint8_t> p = Pixels(8, 8, 3, Solid);
  std::string jpeg = test_images::EncodeJpeg(p.data(), 8, 8, 3, 90);
  // Start of frame (FF C0): length, precision, then height and width.
  const size_t sof = jpeg.find("\xff\xc0");
  ASSERT_NE(sof, std::string::npos);
  for (size_t i : {sof + 5, sof + 7}) {  // 60000 = 0xEA60
    jpeg[i] = static_cast<char>(0xEA);
    jpeg[i + 1] = static_cast<char>(0x60);
  }
  absl::StatusOr<Image> big = DecodeImage(jpeg, "big.jpg");
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(big.status().message()),
              HasSubstr("60000x60000 pixels is over the limit"));
  // The same image with its own size decodes.
  EXPECT_TRUE(DecodeImage(test_images::EncodeJpeg(p.data(), 8, 8, 3, 90),
                          "ok.jpg")
                  .ok());
}

// A folder over its memory budget is streamed: the same pixels, decoded
// per batch, with only labels and row numbers held.
TEST(ImageFolderTest, LargerThanMemoryIsStreamedWithTheSamePixels) {
  TempDir tmp;
  const std::string root = MakeFlatFolder(tmp);
  ImageFolderOptions o;
  o.height = o.width = 12;
  absl::StatusOr<ImageFolderData> mem = ReadImageFolder(root, o);
  ASSERT_TRUE(mem.ok()) << mem.status();
  ASSERT_FALSE(mem->data.streamed());
  EXPECT_EQ(mem->decoded_bytes, mem->data.images.numel());
  o.memory_bytes = mem->decoded_bytes - 1;  // just over budget
  o.cache_bytes = 3 * 12 * 12 * 4;          // room for four images
  absl::StatusOr<ImageFolderData> str = ReadImageFolder(root, o);
  ASSERT_TRUE(str.ok()) << str.status();
  ASSERT_TRUE(str->data.streamed());
  EXPECT_FALSE(str->data.images.defined());
  EXPECT_EQ(qat::ImageShape(str->data), (std::vector<int64_t>{3, 12, 12}));
  EXPECT_TRUE(at::equal(str->data.labels, mem->data.labels));
  const int64_t n = mem->data.size();
  // Twice: the second pass partly from the decode cache.
  for (int pass = 0; pass < 2; ++pass) {
    EXPECT_TRUE(at::equal(qat::SliceImages(str->data, 0, n),
                          qat::SliceImages(mem->data, 0, n)))
        << "pass " << pass;
  }

  // Streamed, a corrupt image fails the batch that reads it, naming the
  // file; with skip_bad every image is checked up front and counted.
  const std::string bad_root = tmp.File("corrupt");
  WriteJpeg(bad_root + "/a/good.jpg", 8, 8, 3, Pixels(8, 8, 3, Solid));
  testing::WriteFile(bad_root + "/a/bad.jpg", "\xff\xd8\xff truncated");
  ImageFolderOptions so;
  so.height = so.width = 8;
  so.memory_bytes = 0;  // always stream
  absl::StatusOr<ImageFolderData> lazy = ReadImageFolder(bad_root, so);
  ASSERT_TRUE(lazy.ok()) << lazy.status();
  ASSERT_EQ(lazy->data.size(), 2);
  try {
    qat::SliceImages(lazy->data, 0, 2);
    ADD_FAILURE() << "the corrupt image decoded";
  } catch (const std::exception& e) {
    EXPECT_THAT(std::string(e.what()), HasSubstr("bad.jpg"));
  }
  so.skip_bad = true;
  absl::StatusOr<ImageFolderData> checked = ReadImageFolder(bad_root, so);
  ASSERT_TRUE(checked.ok()) << checked.status();
  EXPECT_TRUE(checked->data.streamed());
  EXPECT_EQ(checked->skipped, 1);
  EXPECT_EQ(checked->data.size(), 1);
  EXPECT_NO_THROW(qat::SliceImages(checked->data, 0, 1));

  // Through a data spec: memory_mb=0 streams, and the splits say so.
  absl::StatusOr<DataSpec> spec =
      ParseDataSpec(absl::StrCat("folder:", root, ";size=12;memory_mb=0"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->memory_mb, 0);
  SplitOptions split;
  split.val_size = 4;
  absl::StatusOr<DatasetSplits> d = LoadDataset(*spec, split);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(d->train.streamed());
  EXPECT_TRUE(d->val.streamed());
  EXPECT_EQ(d->train.size() + d->val.size() + d->test.size(), n);
  bool noted = false;
  for (const std::string& note : d->notes) {
    noted = noted || note.find("streamed from disk") != std::string::npos;
  }
  EXPECT_TRUE(noted);
  for (const char* bad_spec : {"folder:/x;memory_mb=-1", "folder:/x;cache_mb=x",
                               "tensor:/x.pt;memory_mb=1"}) {
    EXPECT_EQ(ParseDataSpec(bad_spec).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad_spec;
  }
}

}  // namespace
}  // namespace autoq::evaluator
