#include "evaluator/dataset.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace autoq::evaluator {
namespace {

// A spec of `kind` reading `train` and `test`, every option at its default.
DataSpec Spec(const std::string& kind, const std::string& train,
              const std::string& test) {
  DataSpec spec;
  spec.kind = kind;
  spec.train_path = train;
  spec.test_path = test;
  return spec;
}

using ::testing::HasSubstr;

// absl::Status::message() is Debian Abseil's own string_view, which gMock
// prints character by character; a std::string reads better in failures.
std::string Msg(const absl::Status& s) { return std::string(s.message()); }

// ---------------------------------------------------------------------------
// Fixture-file helpers.

std::string BigEndian(uint32_t v) {
  std::string s(4, '\0');
  s[0] = static_cast<char>(v >> 24);
  s[1] = static_cast<char>(v >> 16);
  s[2] = static_cast<char>(v >> 8);
  s[3] = static_cast<char>(v);
  return s;
}

// Image i has pixel (r, c) = (i * 7 + r * w + c) % 256, so pixel 0 is
// unique per image for i < 256 / gcd(7, 256) = 256 images.
uint8_t Pixel(int64_t i, int64_t offset) {
  return static_cast<uint8_t>((i * 7 + offset) % 256);
}

std::string IdxImages(int64_t n, int64_t h, int64_t w) {
  std::string s =
      BigEndian(0x00000803) + BigEndian(n) + BigEndian(h) + BigEndian(w);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t p = 0; p < h * w; ++p)
      s.push_back(static_cast<char>(Pixel(i, p)));
  }
  return s;
}

std::string IdxLabels(const std::vector<int>& labels) {
  std::string s = BigEndian(0x00000801) + BigEndian(labels.size());
  for (int l : labels) s.push_back(static_cast<char>(l));
  return s;
}

std::vector<int> CyclicLabels(int n, int classes) {
  std::vector<int> l(n);
  for (int i = 0; i < n; ++i) l[i] = i % classes;
  return l;
}

// Record i: label labels[i], pixel p = Pixel(i, p).
std::string CifarBatch(const std::vector<int>& labels) {
  std::string s;
  for (size_t i = 0; i < labels.size(); ++i) {
    s.push_back(static_cast<char>(labels[i]));
    for (int p = 0; p < 3072; ++p) {
      s.push_back(static_cast<char>(Pixel(static_cast<int64_t>(i), p)));
    }
  }
  return s;
}

void WriteFile(const std::string& path, const std::string& bytes,
               bool gzip = false) {
  if (gzip) {
    gzFile f = gzopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr) << path;
    ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
              static_cast<int>(bytes.size()));
    ASSERT_EQ(gzclose(f), Z_OK);
  } else {
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    ASSERT_TRUE(out.good()) << path;
  }
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
}

std::string MakeTempDir(const std::string& tag) {
  std::string dir =
      absl::StrCat(::testing::TempDir(), "autoq_eval_", tag, "_", getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir(
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  // Writes the four IDX files of a dataset with n_train / n_test images.
  void WriteIdxDir(int n_train, int n_test, bool gzip) {
    const std::string gz = gzip ? ".gz" : "";
    WriteFile(Path("train-images-idx3-ubyte" + gz), IdxImages(n_train, 4, 3),
              gzip);
    WriteFile(Path("train-labels-idx1-ubyte" + gz),
              IdxLabels(CyclicLabels(n_train, 10)), gzip);
    WriteFile(Path("t10k-images-idx3-ubyte" + gz), IdxImages(n_test, 4, 3),
              gzip);
    WriteFile(Path("t10k-labels-idx1-ubyte" + gz),
              IdxLabels(CyclicLabels(n_test, 10)), gzip);
  }

  std::string dir_;
};

// The first pixel of every image, which identifies it (see Pixel()).
std::vector<int64_t> FirstPixels(const qat::TensorDataset& d) {
  at::Tensor p = d.images.reshape({d.size(), -1}).select(1, 0).to(at::kLong);
  return std::vector<int64_t>(p.data_ptr<int64_t>(),
                              p.data_ptr<int64_t>() + p.numel());
}

// ---------------------------------------------------------------------------
// ParseDataSpec

TEST(ParseDataSpecTest, DebianFashionMnistDefault) {
  auto spec = ParseDataSpec("fashion-mnist");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->kind, "fashion-mnist");
  EXPECT_EQ(spec->train_path, "/usr/share/datasets/fashion-mnist");
  EXPECT_EQ(spec->test_path, "/usr/share/datasets/fashion-mnist");
  EXPECT_TRUE(spec->mean.empty());
  EXPECT_TRUE(spec->std.empty());
}

TEST(ParseDataSpecTest, DirectoryKinds) {
  for (const char* kind : {"fashion-mnist", "mnist", "idx", "cifar10"}) {
    auto spec = ParseDataSpec(absl::StrCat(kind, ":/data/x"));
    ASSERT_TRUE(spec.ok()) << spec.status();
    EXPECT_EQ(spec->kind, kind);
    EXPECT_EQ(spec->train_path, "/data/x");
    EXPECT_EQ(spec->test_path, "/data/x");
  }
}

TEST(ParseDataSpecTest, TensorFiles) {
  auto one = ParseDataSpec("tensor:/a/train.pt");
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->kind, "tensor");
  EXPECT_EQ(one->train_path, "/a/train.pt");
  EXPECT_EQ(one->test_path, "");
  auto two = ParseDataSpec("tensor:/a/train.pt,/a/test.pt");
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_EQ(two->train_path, "/a/train.pt");
  EXPECT_EQ(two->test_path, "/a/test.pt");
}

TEST(ParseDataSpecTest, ScalarNormalization) {
  auto spec = ParseDataSpec("mnist:/d;mean=0.5;std=0.25");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->mean, std::vector<float>{0.5f});
  EXPECT_EQ(spec->std, std::vector<float>{0.25f});
}

TEST(ParseDataSpecTest, PerChannelNormalization) {
  auto spec =
      ParseDataSpec("cifar10:/d;mean=0.49,0.48,0.45;std=0.25,0.24,0.26");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->mean, (std::vector<float>{0.49f, 0.48f, 0.45f}));
  EXPECT_EQ(spec->std, (std::vector<float>{0.25f, 0.24f, 0.26f}));
}

TEST(ParseDataSpecTest, UnknownKindIsNamed) {
  auto spec = ParseDataSpec("imagenet:/d");
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(spec.status()), HasSubstr("'imagenet'"));
}

TEST(ParseDataSpecTest, UnknownOptionIsNamed) {
  auto spec = ParseDataSpec("mnist:/d;scale=2");
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(spec.status()), HasSubstr("'scale'"));
}

TEST(ParseDataSpecTest, MalformedSpecsAreRejected) {
  for (const char* bad : {
           "mnist",                            // needs a directory
           "idx:",                             // empty path
           "cifar10",                          // needs a directory
           "tensor:",                          // no file
           "tensor:a.pt,b.pt,c.pt",            // too many files
           "tensor:a.pt,",                     // empty test file
           "mnist:/d;mean=0.5",                // mean without std
           "mnist:/d;std=0.5",                 // std without mean
           "mnist:/d;mean=0.5,0.4;std=0.2",    // length mismatch
           "mnist:/d;mean=abc;std=0.2",        // not a number
           "mnist:/d;mean=;std=0.2",           // empty value
           "mnist:/d;mean=0.5;std=0",          // std must be > 0
           "mnist:/d;mean=0.5;mean=0.5;std=1"  // duplicate
       }) {
    auto spec = ParseDataSpec(bad);
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

// ---------------------------------------------------------------------------
// ReadIdx

using ReadIdxTest = TempDirTest;

TEST_F(ReadIdxTest, ReadsRawAndGzippedIdentically) {
  const std::vector<int> labels = {3, 0, 9, 1, 4};
  WriteFile(Path("img"), IdxImages(5, 4, 3));
  WriteFile(Path("lbl"), IdxLabels(labels));
  WriteFile(Path("img.gz"), IdxImages(5, 4, 3), /*gzip=*/true);
  WriteFile(Path("lbl.gz"), IdxLabels(labels), /*gzip=*/true);

  auto raw = ReadIdx(Path("img"), Path("lbl"), 10);
  ASSERT_TRUE(raw.ok()) << raw.status();
  auto gz = ReadIdx(Path("img.gz"), Path("lbl.gz"), 10);
  ASSERT_TRUE(gz.ok()) << gz.status();

  EXPECT_EQ(raw->images.sizes(), (std::vector<int64_t>{5, 1, 4, 3}));
  EXPECT_EQ(raw->images.scalar_type(), at::kByte);
  EXPECT_EQ(raw->labels.scalar_type(), at::kLong);
  EXPECT_EQ(raw->num_classes, 10);
  EXPECT_EQ(raw->size(), 5);
  for (int64_t i = 0; i < 5; ++i) {
    EXPECT_EQ(raw->labels[i].item<int64_t>(), labels[i]);
    for (int64_t r = 0; r < 4; ++r) {
      for (int64_t c = 0; c < 3; ++c) {
        EXPECT_EQ(raw->images[i][0][r][c].item<uint8_t>(), Pixel(i, r * 3 + c));
      }
    }
  }
  EXPECT_TRUE(at::equal(raw->images, gz->images));
  EXPECT_TRUE(at::equal(raw->labels, gz->labels));
}

TEST_F(ReadIdxTest, MissingFileIsNotFound) {
  WriteFile(Path("lbl"), IdxLabels({1}));
  auto d = ReadIdx(Path("nope"), Path("lbl"), 10);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Msg(d.status()), HasSubstr(Path("nope")));
}

TEST_F(ReadIdxTest, TruncatedImagesNameSizes) {
  std::string img = IdxImages(3, 4, 3);  // 16 + 36 bytes.
  img.resize(img.size() - 5);
  WriteFile(Path("img"), img);
  WriteFile(Path("lbl"), IdxLabels({1, 2, 3}));
  auto d = ReadIdx(Path("img"), Path("lbl"), 10);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Msg(d.status()), HasSubstr(Path("img")));
  EXPECT_THAT(Msg(d.status()), HasSubstr("52"));  // promised
  EXPECT_THAT(Msg(d.status()), HasSubstr("47"));  // actual
}

TEST_F(ReadIdxTest, TruncatedHeader) {
  WriteFile(Path("img"), IdxImages(3, 4, 3).substr(0, 10));
  WriteFile(Path("lbl"), IdxLabels({1, 2, 3}));
  auto d = ReadIdx(Path("img"), Path("lbl"), 10);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Msg(d.status()), HasSubstr("10 bytes"));
}

TEST_F(ReadIdxTest, TruncatedLabels) {
  WriteFile(Path("img"), IdxImages(3, 4, 3));
  std::string lbl = IdxLabels({1, 2, 3});
  lbl.pop_back();
  WriteFile(Path("lbl"), lbl);
  auto d = ReadIdx(Path("img"), Path("lbl"), 10);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Msg(d.status()), HasSubstr(Path("lbl")));
  EXPECT_THAT(Msg(d.status()), HasSubstr("11"));
  EXPECT_THAT(Msg(d.status()), HasSubstr("10"));
}

TEST_F(ReadIdxTest, TruncatedGzipStreamIsDataLoss) {
  WriteFile(Path("img.gz"), IdxImages(50, 8, 8), /*gzip=*/true);
  std::string gz = ReadAll(Path("img.gz"));
  WriteFile(Path("cut.gz"), gz.substr(0, gz.size() / 2));
  WriteFile(Path("lbl"), IdxLabels(CyclicLabels(50, 10)));
  auto d = ReadIdx(Path("cut.gz"), Path("lbl"), 10);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Msg(d.status()), HasSubstr(Path("cut.gz")));
}

TEST_F(ReadIdxTest, TrailingBytesAreRejected) {
  WriteFile(Path("img"), IdxImages(2, 4, 3) + "xx");
  WriteFile(Path("lbl"), IdxLabels({1, 2}));
  auto d = ReadIdx(Path("img"), Path("lbl"), 10);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(d.status()), HasSubstr("42"));
}

TEST_F(ReadIdxTest, WrongImagesMagicNamesBoth) {
  // A label file passed as the images file.
  WriteFile(Path("lbl"), IdxLabels({1, 2}));
  auto d = ReadIdx(Path("lbl"), Path("lbl"), 10);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(d.status()), HasSubstr(Path("lbl")));
  EXPECT_THAT(Msg(d.status()), HasSubstr("0x00000801"));
  EXPECT_THAT(Msg(d.status()), HasSubstr("0x00000803"));
}

TEST_F(ReadIdxTest, WrongLabelsMagicNamesBoth) {
  WriteFile(Path("img"), IdxImages(2, 4, 3));
  auto d = ReadIdx(Path("img"), Path("img"), 10);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(d.status()), HasSubstr("0x00000803"));
  EXPECT_THAT(Msg(d.status()), HasSubstr("0x00000801"));
}

TEST_F(ReadIdxTest, CountMismatch) {
  WriteFile(Path("img"), IdxImages(3, 4, 3));
  WriteFile(Path("lbl"), IdxLabels({1, 2}));
  auto d = ReadIdx(Path("img"), Path("lbl"), 10);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(d.status()), HasSubstr("3 images"));
  EXPECT_THAT(Msg(d.status()), HasSubstr("2 labels"));
}

TEST_F(ReadIdxTest, LabelOutOfRangeNamesIndexAndValue) {
  WriteFile(Path("img"), IdxImages(4, 4, 3));
  WriteFile(Path("lbl"), IdxLabels({1, 2, 10, 11}));
  auto d = ReadIdx(Path("img"), Path("lbl"), 10);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(d.status()), HasSubstr(Path("lbl")));
  EXPECT_THAT(Msg(d.status()), HasSubstr("label 2 is 10"));
}

TEST_F(ReadIdxTest, NonPositiveNumClasses) {
  WriteFile(Path("img"), IdxImages(1, 4, 3));
  WriteFile(Path("lbl"), IdxLabels({0}));
  EXPECT_EQ(ReadIdx(Path("img"), Path("lbl"), 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------
// ReadCifar10

using ReadCifarTest = TempDirTest;

TEST_F(ReadCifarTest, ConcatenatesBatchesInChwOrder) {
  WriteFile(Path("a.bin"), CifarBatch({6, 9}));
  WriteFile(Path("b.bin"), CifarBatch({0}));
  auto d = ReadCifar10({Path("a.bin"), Path("b.bin")});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->images.sizes(), (std::vector<int64_t>{3, 3, 32, 32}));
  EXPECT_EQ(d->images.scalar_type(), at::kByte);
  EXPECT_EQ(d->num_classes, 10);
  EXPECT_EQ(d->labels[0].item<int64_t>(), 6);
  EXPECT_EQ(d->labels[1].item<int64_t>(), 9);
  EXPECT_EQ(d->labels[2].item<int64_t>(), 0);
  // Record 1 of a.bin, channel 2, row 5, column 7.
  EXPECT_EQ(d->images[1][2][5][7].item<uint8_t>(),
            Pixel(1, 2 * 1024 + 5 * 32 + 7));
  // Record 0 of b.bin restarts the per-file pattern.
  EXPECT_EQ(d->images[2][1][0][3].item<uint8_t>(), Pixel(0, 1024 + 3));
}

TEST_F(ReadCifarTest, MissingFileIsNotFound) {
  auto d = ReadCifar10({Path("none.bin")});
  EXPECT_EQ(d.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Msg(d.status()), HasSubstr(Path("none.bin")));
}

TEST_F(ReadCifarTest, TruncatedRecordNamesSizes) {
  std::string b = CifarBatch({1, 2});
  b.resize(b.size() - 100);  // 6146 - 100 = 6046.
  WriteFile(Path("t.bin"), b);
  auto d = ReadCifar10({Path("t.bin")});
  EXPECT_EQ(d.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Msg(d.status()), HasSubstr(Path("t.bin")));
  EXPECT_THAT(Msg(d.status()), HasSubstr("6046"));
  EXPECT_THAT(Msg(d.status()), HasSubstr("6146"));
}

TEST_F(ReadCifarTest, EmptyFileIsDataLoss) {
  WriteFile(Path("e.bin"), "");
  EXPECT_EQ(ReadCifar10({Path("e.bin")}).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST_F(ReadCifarTest, LabelOutOfRangeNamesIndexAndValue) {
  WriteFile(Path("l.bin"), CifarBatch({1, 2, 12}));
  auto d = ReadCifar10({Path("l.bin")});
  EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(d.status()), HasSubstr(Path("l.bin")));
  EXPECT_THAT(Msg(d.status()), HasSubstr("label 2 is 12"));
}

TEST(ReadCifarNoFilesTest, EmptyListIsInvalid) {
  EXPECT_EQ(ReadCifar10({}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------
// LoadDataset on IDX / CIFAR directories

using LoadDatasetTest = TempDirTest;

TEST_F(LoadDatasetTest, IdxSplitsPartitionTheTrainFile) {
  WriteIdxDir(/*n_train=*/100, /*n_test=*/20, /*gzip=*/true);
  auto spec = ParseDataSpec(absl::StrCat("idx:", dir_, ";mean=0.5;std=0.25"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  SplitOptions opt;
  opt.val_size = 10;
  opt.seed = 7;
  auto s = LoadDataset(*spec, opt);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->train.size(), 90);
  EXPECT_EQ(s->val.size(), 10);
  EXPECT_EQ(s->test.size(), 20);
  for (const auto* d : {&s->train, &s->val, &s->test}) {
    EXPECT_EQ(d->images.sizes(), (std::vector<int64_t>{d->size(), 1, 4, 3}));
    EXPECT_EQ(d->num_classes, 10);
    EXPECT_EQ(d->mean, std::vector<float>{0.5f});
    EXPECT_EQ(d->std, std::vector<float>{0.25f});
  }
  // Train and val together are exactly the 100 training images, each once,
  // and every image keeps its own label.
  std::set<int64_t> seen;
  for (const auto* d : {&s->train, &s->val}) {
    const std::vector<int64_t> ids = FirstPixels(*d);
    for (size_t k = 0; k < ids.size(); ++k) {
      const int64_t i = (ids[k] * 183) % 256;  // 7^-1 mod 256 = 183.
      EXPECT_TRUE(seen.insert(i).second) << "duplicate image " << i;
      EXPECT_EQ(d->labels[static_cast<int64_t>(k)].item<int64_t>(), i % 10);
    }
  }
  EXPECT_EQ(seen.size(), 100u);
  EXPECT_EQ(*seen.rbegin(), 99);
  // The test split is the test file in order.
  EXPECT_EQ(FirstPixels(s->test)[3], Pixel(3, 0));
}

TEST_F(LoadDatasetTest, SplitIsDeterministicPerSeed) {
  WriteIdxDir(200, 10, /*gzip=*/false);
  DataSpec spec = Spec("idx", dir_, dir_);
  SplitOptions opt;
  opt.val_size = 50;
  opt.seed = 1;
  auto a = LoadDataset(spec, opt);
  auto b = LoadDataset(spec, opt);
  opt.seed = 2;
  auto c = LoadDataset(spec, opt);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok())
      << a.status() << b.status() << c.status();
  EXPECT_TRUE(at::equal(a->val.images, b->val.images));
  EXPECT_TRUE(at::equal(a->train.labels, b->train.labels));
  EXPECT_FALSE(at::equal(a->val.images, c->val.images));
  EXPECT_TRUE(at::equal(a->test.images, c->test.images));
}

TEST_F(LoadDatasetTest, SubsetsTakeTheFirstOfEachSplit) {
  WriteIdxDir(100, 20, /*gzip=*/false);
  DataSpec spec = Spec("mnist", dir_, dir_);
  SplitOptions full;
  full.val_size = 30;
  full.seed = 3;
  SplitOptions sub = full;
  sub.train_subset = 7;
  sub.val_subset = 4;
  sub.test_subset = 5;
  auto f = LoadDataset(spec, full);
  auto s = LoadDataset(spec, sub);
  ASSERT_TRUE(f.ok() && s.ok()) << f.status() << s.status();
  EXPECT_EQ(s->train.size(), 7);
  EXPECT_EQ(s->val.size(), 4);
  EXPECT_EQ(s->test.size(), 5);
  EXPECT_TRUE(at::equal(s->train.images, f->train.images.slice(0, 0, 7)));
  EXPECT_TRUE(at::equal(s->val.images, f->val.images.slice(0, 0, 4)));
  EXPECT_TRUE(at::equal(s->test.images, f->test.images.slice(0, 0, 5)));
  // Subsets larger than the split keep it whole.
  sub.train_subset = 1000;
  auto big = LoadDataset(spec, sub);
  ASSERT_TRUE(big.ok()) << big.status();
  EXPECT_EQ(big->train.size(), 70);
}

TEST_F(LoadDatasetTest, ZeroValSize) {
  WriteIdxDir(20, 5, /*gzip=*/false);
  SplitOptions opt;
  opt.val_size = 0;
  auto s = LoadDataset(Spec("idx", dir_, dir_), opt);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->train.size(), 20);
  EXPECT_EQ(s->val.size(), 0);
}

TEST_F(LoadDatasetTest, RejectsBadOptions) {
  WriteIdxDir(20, 5, /*gzip=*/false);
  DataSpec spec = Spec("idx", dir_, dir_);
  SplitOptions opt;
  opt.val_size = 20;  // Leaves no training data.
  EXPECT_EQ(LoadDataset(spec, opt).status().code(),
            absl::StatusCode::kInvalidArgument);
  opt.val_size = -1;
  EXPECT_EQ(LoadDataset(spec, opt).status().code(),
            absl::StatusCode::kInvalidArgument);
  opt.val_size = 5;
  opt.train_subset = -2;
  EXPECT_EQ(LoadDataset(spec, opt).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Three mean values for one-channel images.
  SplitOptions ok;
  ok.val_size = 5;
  DataSpec rgb = spec;
  rgb.mean = {0.1f, 0.2f, 0.3f};
  rgb.std = {1, 1, 1};
  auto s = LoadDataset(rgb, ok);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(s.status()), HasSubstr("1 channels"));
  DataSpec unknown = spec;
  unknown.kind = "svhn";
  EXPECT_THAT(Msg(LoadDataset(unknown, ok).status()), HasSubstr("svhn"));
}

TEST_F(LoadDatasetTest, TestShapeMustMatchTrain) {
  WriteIdxDir(20, 5, /*gzip=*/false);
  WriteFile(Path("t10k-images-idx3-ubyte"), IdxImages(5, 2, 2));
  SplitOptions opt;
  opt.val_size = 5;
  auto s = LoadDataset(Spec("idx", dir_, dir_), opt);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(s.status()), HasSubstr("1x2x2"));
  EXPECT_THAT(Msg(s.status()), HasSubstr("1x4x3"));
}

TEST_F(LoadDatasetTest, MissingIdxFileIsNotFound) {
  WriteIdxDir(20, 5, /*gzip=*/false);
  std::filesystem::remove(Path("t10k-labels-idx1-ubyte"));
  SplitOptions opt;
  opt.val_size = 5;
  auto s = LoadDataset(Spec("idx", dir_, dir_), opt);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Msg(s.status()), HasSubstr(Path("t10k-labels-idx1-ubyte")));
}

TEST_F(LoadDatasetTest, CifarDirUsesTheBatchesThatExist) {
  WriteFile(Path("data_batch_1.bin"), CifarBatch(CyclicLabels(6, 10)));
  WriteFile(Path("data_batch_3.bin"), CifarBatch(CyclicLabels(4, 10)));
  WriteFile(Path("test_batch.bin"), CifarBatch(CyclicLabels(3, 10)));
  auto spec = ParseDataSpec(
      absl::StrCat("cifar10:", dir_, ";mean=0.4,0.5,0.6;std=0.2,0.2,0.2"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  SplitOptions opt;
  opt.val_size = 2;
  auto s = LoadDataset(*spec, opt);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->train.size(), 8);
  EXPECT_EQ(s->val.size(), 2);
  EXPECT_EQ(s->test.size(), 3);
  EXPECT_EQ(s->train.images.sizes(), (std::vector<int64_t>{8, 3, 32, 32}));
  EXPECT_EQ(s->val.num_classes, 10);
  EXPECT_EQ(s->test.mean, (std::vector<float>{0.4f, 0.5f, 0.6f}));
}

TEST_F(LoadDatasetTest, CifarDirErrors) {
  SplitOptions opt;
  opt.val_size = 1;
  auto none = LoadDataset(Spec("cifar10", dir_, dir_), opt);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Msg(none.status()), HasSubstr("data_batch_1.bin"));
  WriteFile(Path("data_batch_2.bin"), CifarBatch({1, 2, 3}));
  auto no_test = LoadDataset(Spec("cifar10", dir_, dir_), opt);
  EXPECT_EQ(no_test.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Msg(no_test.status()), HasSubstr("test_batch.bin"));
}

// The real Debian dataset-fashion-mnist package (a declared dependency in
// scripts/install_deps.sh).
TEST(FashionMnistTest, LoadsDebianPackage) {
  auto spec = ParseDataSpec("fashion-mnist");
  ASSERT_TRUE(spec.ok()) << spec.status();
  SplitOptions opt;  // val_size 5000.
  auto s = LoadDataset(*spec, opt);
  ASSERT_TRUE(s.ok()) << s.status()
                      << " (install Debian's dataset-fashion-mnist)";
  EXPECT_EQ(s->train.size() + s->val.size(), 60000);
  EXPECT_EQ(s->val.size(), 5000);
  EXPECT_EQ(s->test.size(), 10000);
  EXPECT_EQ(s->train.images.sizes(), (std::vector<int64_t>{55000, 1, 28, 28}));
  EXPECT_EQ(s->test.images.sizes(), (std::vector<int64_t>{10000, 1, 28, 28}));
  EXPECT_EQ(s->train.num_classes, 10);
  // The Fashion-MNIST test set is balanced: 1000 images per class.
  at::Tensor counts = at::bincount(s->test.labels, {}, 10);
  EXPECT_TRUE(at::equal(counts, at::full({10}, 1000, counts.options())));
  EXPECT_GT(s->train.images.max().item<uint8_t>(), 200);
}

// ---------------------------------------------------------------------------
// Tensor files, generated with Debian's python3-torch.

class TensorFileTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(MakeTempDir("tensor_files"));
    const std::string script = *dir_ + "/make.py";
    std::ofstream(script) << R"PY(
import sys, torch
d = sys.argv[1]
x = (torch.arange(12 * 3 * 4 * 4) % 256).to(torch.uint8).reshape(12, 3, 4, 4)
y = torch.arange(12, dtype=torch.int64) % 4
torch.save({'images': x, 'labels': y}, d + '/train.pt')
xt = torch.linspace(0, 1, 6 * 3 * 4 * 4).reshape(6, 3, 4, 4)
torch.save({'images': xt, 'labels': torch.tensor([0, 1, 2, 3, 4, 0])},
           d + '/test.pt')
# Two keys each: LibTorch 1.13's unpickler lacks SETITEM, which Python uses
# for one-entry dicts.
torch.save({'images': x, 'targets': y}, d + '/no_labels.pt')
torch.save({'pixels': x, 'labels': y}, d + '/no_images.pt')
torch.save({'images': x, 'labels': y.to(torch.int32)}, d + '/int32_labels.pt')
torch.save({'images': x.double(), 'labels': y}, d + '/f64_images.pt')
torch.save({'images': x[:, 0], 'labels': y}, d + '/rank3.pt')
torch.save({'images': x, 'labels': y.reshape(3, 4)}, d + '/labels_rank2.pt')
torch.save({'images': x, 'labels': y[:5]}, d + '/count.pt')
torch.save({'images': x, 'labels': y - 1}, d + '/negative.pt')
torch.save([x, y], d + '/list.pt')
torch.save({'images': x, 'labels': y}, d + '/legacy.pt',
           _use_new_zipfile_serialization=False)
xv = (torch.arange(5 * 3 * 4 * 4) % 7).to(torch.uint8).reshape(5, 3, 4, 4)
torch.save({'images': xv, 'labels': torch.tensor([0, 1, 2, 3, 1])},
           d + '/val.pt')
torch.save({'images': xv[:, :2], 'labels': torch.tensor([0, 1, 2, 3, 1])},
           d + '/val_shape.pt')
torch.save({'images': xv, 'labels': torch.tensor([0, 1, 9, 3, 1])},
           d + '/val_label.pt')
# Stride-0 views of one element: 1.2 GB once made contiguous.
torch.save({'images': torch.zeros(1, 1, 1, 1, dtype=torch.uint8)
                          .expand(100000, 3, 64, 64),
            'labels': torch.zeros(1, dtype=torch.int64).expand(100000)},
           d + '/expanded.pt')
)PY";
    // Plain `python3` may be a pyenv without torch; Debian's is explicit.
    python_ok_ =
        std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
    if (!python_ok_) return;
    const std::string cmd =
        absl::StrCat("/usr/bin/python3 ", script, " ", *dir_, " 2>&1");
    script_ok_ = std::system(cmd.c_str()) == 0;
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }
  void SetUp() override {
    if (!python_ok_) {
      GTEST_SKIP() << "/usr/bin/python3 cannot import torch (python3-torch)";
    }
    ASSERT_TRUE(script_ok_) << "generating the tensor files failed";
  }
  static std::string Path(const std::string& name) {
    return *dir_ + "/" + name;
  }
  static void ExpectInvalid(const std::string& name,
                            const std::string& substr) {
    auto d = ReadTensorFile(Path(name));
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_THAT(Msg(d.status()), HasSubstr(Path(name)));
    EXPECT_THAT(Msg(d.status()), HasSubstr(substr)) << name;
  }

  static std::string* dir_;
  static bool python_ok_;
  static bool script_ok_;
};

std::string* TensorFileTest::dir_ = nullptr;
bool TensorFileTest::python_ok_ = false;
bool TensorFileTest::script_ok_ = false;

TEST_F(TensorFileTest, ReadsUint8AndFloat) {
  auto train = ReadTensorFile(Path("train.pt"));
  ASSERT_TRUE(train.ok()) << train.status();
  EXPECT_EQ(train->images.sizes(), (std::vector<int64_t>{12, 3, 4, 4}));
  EXPECT_EQ(train->images.scalar_type(), at::kByte);
  EXPECT_EQ(train->num_classes, 4);
  EXPECT_EQ(train->images[2][1][3][0].item<uint8_t>(),
            (2 * 48 + 1 * 16 + 3 * 4) % 256);
  EXPECT_EQ(train->labels[7].item<int64_t>(), 3);

  auto test = ReadTensorFile(Path("test.pt"));
  ASSERT_TRUE(test.ok()) << test.status();
  EXPECT_EQ(test->images.scalar_type(), at::kFloat);
  EXPECT_EQ(test->num_classes, 5);
  EXPECT_FLOAT_EQ(test->images[5][2][3][3].item<float>(), 1.0f);
}

// A validation file of the user's: the whole training file trains, and
// the split seed only orders it.
TEST_F(TensorFileTest, LoadDatasetWithValFile) {
  auto spec = ParseDataSpec(absl::StrCat("tensor:", Path("train.pt"), ",",
                                         Path("test.pt"), ";val=",
                                         Path("val.pt")));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->val_path, Path("val.pt"));
  SplitOptions opt;
  opt.val_size = 3;  // ignored: nothing is carved
  opt.seed = 5;
  auto s = LoadDataset(*spec, opt);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->train.size(), 12);
  EXPECT_EQ(s->val.size(), 5);
  EXPECT_EQ(s->val.num_classes, s->train.num_classes);
  EXPECT_EQ(s->val.labels[2].item<int64_t>(), 2);
  opt.val_subset = 2;
  opt.seed = 6;
  auto other = LoadDataset(*spec, opt);
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(other->val.size(), 2);
  EXPECT_TRUE(at::equal(other->val.images, s->val.images.slice(0, 0, 2)));
}

TEST_F(TensorFileTest, ValFileErrorsNameTheFile) {
  for (const auto& [file, substr] :
       {std::pair<std::string, std::string>{"val_shape.pt", "validation images"},
        {"val_label.pt", "9"},
        {"absent_val.pt", "absent_val.pt"}}) {
    auto spec = ParseDataSpec(absl::StrCat("tensor:", Path("train.pt"), ",",
                                           Path("test.pt"), ";val=", Path(file)));
    ASSERT_TRUE(spec.ok()) << spec.status();
    auto s = LoadDataset(*spec, SplitOptions{});
    ASSERT_FALSE(s.ok()) << file;
    EXPECT_THAT(Msg(s.status()), HasSubstr(Path(file))) << Msg(s.status());
    EXPECT_THAT(Msg(s.status()), HasSubstr(substr)) << Msg(s.status());
  }
  EXPECT_FALSE(ParseDataSpec("fashion-mnist;val=").ok());
  EXPECT_FALSE(ParseDataSpec("fashion-mnist;val=a.pt;val=b.pt").ok());
}

TEST_F(TensorFileTest, LoadDatasetWithTestFile) {
  auto spec = ParseDataSpec(
      absl::StrCat("tensor:", Path("train.pt"), ",", Path("test.pt")));
  ASSERT_TRUE(spec.ok()) << spec.status();
  SplitOptions opt;
  opt.val_size = 2;
  auto s = LoadDataset(*spec, opt);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->train.size(), 10);
  EXPECT_EQ(s->val.size(), 2);
  EXPECT_EQ(s->test.size(), 6);
  // max(label) + 1 over train and test.
  EXPECT_EQ(s->train.num_classes, 5);
  EXPECT_EQ(s->val.num_classes, 5);
  EXPECT_EQ(s->test.num_classes, 5);
}

TEST_F(TensorFileTest, TestCarvedFromTrainIndependentOfSeed) {
  DataSpec spec = Spec("tensor", Path("train.pt"), "");
  SplitOptions opt;
  opt.val_size = 2;
  opt.test_size = 3;
  opt.seed = 1;
  auto a = LoadDataset(spec, opt);
  opt.seed = 2;
  auto b = LoadDataset(spec, opt);
  ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
  EXPECT_EQ(a->train.size(), 7);
  EXPECT_EQ(a->val.size(), 2);
  EXPECT_EQ(a->test.size(), 3);
  EXPECT_EQ(a->train.num_classes, 4);
  EXPECT_TRUE(at::equal(a->test.images, b->test.images));
  // The three splits are disjoint: 12 distinct first pixels in all.
  std::set<int64_t> seen;
  for (const auto* d : {&a->train, &a->val, &a->test}) {
    for (int64_t p : FirstPixels(*d)) EXPECT_TRUE(seen.insert(p).second);
  }
  EXPECT_EQ(seen.size(), 12u);
  // test_size 0 carves val_size samples.
  opt.test_size = 0;
  auto c = LoadDataset(spec, opt);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->test.size(), 2);
  EXPECT_EQ(c->train.size(), 8);
}

TEST_F(TensorFileTest, MissingFileIsNotFound) {
  auto d = ReadTensorFile(Path("absent.pt"));
  EXPECT_EQ(d.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Msg(d.status()), HasSubstr(Path("absent.pt")));
}

TEST_F(TensorFileTest, MissingKeys) {
  ExpectInvalid("no_labels.pt", "no 'labels' entry (keys: images, targets)");
  ExpectInvalid("no_images.pt", "no 'images' entry (keys: pixels, labels)");
}

TEST_F(TensorFileTest, WrongDtypes) {
  ExpectInvalid("int32_labels.pt", "int64");
  ExpectInvalid("f64_images.pt", "Double");
}

TEST_F(TensorFileTest, WrongRanks) {
  ExpectInvalid("rank3.pt", "rank 3");
  ExpectInvalid("labels_rank2.pt", "rank 2");
}

TEST_F(TensorFileTest, CountMismatch) {
  ExpectInvalid("count.pt", "12 images but 5 labels");
}

TEST_F(TensorFileTest, NegativeLabel) {
  ExpectInvalid("negative.pt", "label 0 is -1");
}

TEST_F(TensorFileTest, NotADict) {
  ExpectInvalid("list.pt", "expected a dict");
}

TEST_F(TensorFileTest, NotAZipFile) {
  WriteFile(Path("text.pt"), "hello, not a tensor file\n");
  ExpectInvalid("text.pt", "not a torch.save zip file");
  ExpectInvalid("legacy.pt", "not a torch.save zip file");
}

TEST_F(TensorFileTest, CorruptZipIsCaught) {
  // Passes the signature check, so LibTorch's reader itself throws c10::Error.
  WriteFile(Path("corrupt.pt"), std::string("PK\x03\x04", 4) + "garbage");
  ExpectInvalid("corrupt.pt", "not a readable torch.save file");
  const std::string msg = Msg(ReadTensorFile(Path("corrupt.pt")).status());
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

// Replaces the one occurrence of `from` in `s` by `to` (same length, so
// the zip directory stays valid; LibTorch does not check CRCs).
::testing::AssertionResult Patch(std::string* s, const std::string& from,
                                 const std::string& to) {
  const size_t at = s->find(from);
  if (from.size() != to.size() || at == std::string::npos ||
      s->find(from, at + 1) != std::string::npos) {
    return ::testing::AssertionFailure()
           << "not one occurrence, or a change of length";
  }
  s->replace(at, from.size(), to);
  return ::testing::AssertionSuccess();
}

// Found by fuzz/tensor_file_fuzzer.cc: LibTorch's unpickler reserves a
// string's declared length before reading it, so a one-kilobyte file asked
// for 1.6 GB. Declared sizes beyond the file are refused before LibTorch
// sees them: a string length in the pickle, a record size in the zip
// directory.
TEST_F(TensorFileTest, SizesBeyondTheFileAreRefusedBeforeAllocation) {
  std::ifstream in(Path("train.pt"), std::ios::binary);
  const std::string good((std::istreambuf_iterator<char>(in)), {});
  ASSERT_TRUE(ReadTensorFile(Path("train.pt")).ok());

  std::string huge_string = good;
  const std::string images("X\x06\x00\x00\x00images", 11);
  const size_t at = huge_string.find(images);
  ASSERT_NE(at, std::string::npos);
  huge_string.replace(at + 1, 4, std::string("\x64\x73\x75\x62", 4));
  WriteFile(Path("huge_string.pt"), huge_string);
  ExpectInvalid("huge_string.pt", "a pickled value of 1651864420 bytes");

  std::string huge_record = good;
  const size_t entry = huge_record.find(std::string("PK\x01\x02", 4));
  ASSERT_NE(entry, std::string::npos);
  huge_record.replace(entry + 24, 4, std::string("\xff\xff\xff\x7f", 4));
  WriteFile(Path("huge_record.pt"), huge_record);
  ExpectInvalid("huge_record.pt", "more than the file holds");

  // Key 'im' stored at memo index 0x6f746367 ("gcto") by LONG_BINPUT:
  // LibTorch would grow its memo table to 30 GB (found by fuzz_tensor_file).
  std::string huge_memo = good;
  huge_memo.replace(at, images.size(), "\x8c\x02imrgctoN0");
  WriteFile(Path("huge_memo.pt"), huge_memo);
  ExpectInvalid("huge_memo.pt", "a pickle memo index of 1869898599 in 263");
}

TEST_F(TensorFileTest, UnknownCompressionIsRefusedWithinTheFile) {
  // data/0 with compression method 0xffff and a larger uncompressed size,
  // as in an input fuzz_tensor_file found: an error, not a crash.
  std::ifstream in(Path("train.pt"), std::ios::binary);
  std::string f((std::istreambuf_iterator<char>(in)), {});
  const std::string name = "train/data/0";
  size_t entry = f.find(std::string("PK\x01\x02", 4));
  while (entry != std::string::npos &&
         f.compare(entry + 46, name.size(), name) != 0) {
    entry = f.find(std::string("PK\x01\x02", 4), entry + 4);
  }
  ASSERT_NE(entry, std::string::npos);
  f.replace(entry + 10, 2, std::string("\xff\xff", 2));
  f.replace(entry + 24, 4, std::string("\x00\x10\x00\x00", 4));
  WriteFile(Path("unknown_method.pt"), f);
  ExpectInvalid("unknown_method.pt",
                "zip entry train/data/0 is compressed (method 65535)");
}

TEST_F(TensorFileTest, NamesAreMatchedAsLibTorchMatchesThem) {
  std::ifstream in(Path("train.pt"), std::ios::binary);
  const std::string good((std::istreambuf_iterator<char>(in)), {});
  // LibTorch's zip reader ignores case: "data.Pkl" is the pickle it reads,
  // so its 1.65 GB string is refused as in "data.pkl" (found by
  // fuzz_tensor_file).
  std::string upper = good;
  ASSERT_TRUE(Patch(&upper, std::string("X\x06\x00\x00\x00images", 11),
                    std::string("X\x64\x73\x75\x62images", 11)));
  size_t at = upper.find(std::string("PK\x01\x02", 4));
  ASSERT_NE(at, std::string::npos);
  ASSERT_EQ(upper.compare(at + 46, 14, "train/data.pkl"), 0);
  upper.replace(at + 46 + 11, 1, "P");
  WriteFile(Path("upper_pickle.pt"), upper);
  ExpectInvalid("upper_pickle.pt", "train/data.Pkl: a pickled value of");

  // The images' storage key 'A' and its record "data/a": found by the zip
  // reader, but not the record-sized storage, so refused before its data
  // is read.
  std::string key = good;
  ASSERT_TRUE(Patch(&key, std::string("X\x01\x00\x00\x00", 5) + "0q\x05",
                    std::string("X\x01\x00\x00\x00", 5) + "Aq\x05"));
  for (size_t i = key.find("train/data/0"); i != std::string::npos;
       i = key.find("train/data/0", i + 1)) {
    key.replace(i + 11, 1, "a");
  }
  WriteFile(Path("case_key.pt"), key);
  ExpectInvalid("case_key.pt",
                "'images' (shape 12x3x4x4) is not stored in one of the file's "
                "records");
}

TEST_F(TensorFileTest, Zip64DirectoryOutsideTheFileIsRefused) {
  // PyTorch writes a zip64 end record and its locator in every file, and
  // LibTorch's zip reader takes the directory from them. An offset of
  // 2^64 - 1 passed its overflowing bounds check and read the byte before
  // the file (found by fuzz_tensor_file).
  std::ifstream in(Path("train.pt"), std::ios::binary);
  const std::string good((std::istreambuf_iterator<char>(in)), {});
  const size_t eocd = good.rfind(std::string("PK\x05\x06", 4));
  ASSERT_NE(eocd, std::string::npos);
  ASSERT_EQ(good.compare(eocd - 20, 4, std::string("PK\x06\x07", 4)), 0);
  ASSERT_EQ(good.compare(eocd - 76, 4, std::string("PK\x06\x06", 4)), 0);

  std::string wild = good;
  wild.replace(eocd - 76 + 48, 8, std::string(8, '\xff'));
  WriteFile(Path("zip64_offset.pt"), wild);
  ExpectInvalid("zip64_offset.pt", "a zip directory outside the file");

  std::string moved = good;
  moved.replace(eocd - 20 + 8, 8, std::string(8, '\0'));
  WriteFile(Path("zip64_locator.pt"), moved);
  ExpectInvalid("zip64_locator.pt",
                "a zip64 locator that does not point just before itself");
}

TEST_F(TensorFileTest, PicklesThatUnderflowTheStackAreRefused) {
  std::ifstream in(Path("train.pt"), std::ios::binary);
  const std::string good((std::istreambuf_iterator<char>(in)), {});
  // BUILD right after a MARK: LibTorch 1.13 popped an empty stack and freed
  // a wild pointer (found by fuzz_tensor_file).
  std::string build = good;
  ASSERT_TRUE(Patch(&build, std::string("(X\x06\x00\x00\x00images", 12),
                    std::string("(bX\x05\x00\x00\x00image", 12)));
  WriteFile(Path("build_underflow.pt"), build);
  ExpectInvalid("build_underflow.pt",
                "opcode 0x62 at byte 6 needs more values than the stack holds");
  // The 'labels' key popped away: SETITEMS gets three values, which
  // LibTorch would pair past the end of its stack.
  std::string odd = good;
  ASSERT_TRUE(Patch(&odd, std::string("X\x06\x00\x00\x00labels", 11),
                    std::string("K\x00", 2) + "0N0N0N0N0"));
  WriteFile(Path("odd_setitems.pt"), odd);
  ExpectInvalid("odd_setitems.pt", "pairs an odd number of values");
}

TEST_F(TensorFileTest, ViewsBeyondTheirRecordAreRefused) {
  std::ifstream in(Path("train.pt"), std::ios::binary);
  std::string f((std::istreambuf_iterator<char>(in)), {});
  // 200 images of 3x4x4 whose storage the pickle declares as 9,600 bytes,
  // over the 576-byte record train/data/0; 200 labels alike over 12.
  ASSERT_TRUE(
      Patch(&f, std::string("M\x40\x02t", 4), std::string("M\x80\x25t", 4)));
  ASSERT_TRUE(
      Patch(&f, std::string("(K\x0cK\x03", 5), std::string("(K\xc8K\x03", 5)));
  ASSERT_TRUE(
      Patch(&f, std::string("h\x06K\x0ct", 5), std::string("h\x06K\xc8t", 5)));
  ASSERT_TRUE(Patch(&f, std::string("K\x00K\x0c\x85", 5),
                    std::string("K\x00K\xc8\x85", 5)));
  WriteFile(Path("beyond_record.pt"), f);
  ExpectInvalid("beyond_record.pt",
                "'images' (shape 200x3x4x4) addresses element 9599 of a "
                "storage of 576; the file is damaged");
}

TEST_F(TensorFileTest, ExpandedViewsAreRefusedBeforeTheyAreMaterialized) {
  ExpectInvalid("expanded.pt",
                "'images' (shape 100000x3x64x64) is a view of 1228800000 "
                "elements over a storage of 1 (an expanded tensor?)");
}

}  // namespace
}  // namespace autoq::evaluator
