// Streamed datasets: batches decoded on demand equal the in-memory ones,
// the prefetcher returns them in order with bounded look-ahead and passes
// decoder errors on, and a fine-tune on a streamed dataset is the same
// fine-tune.
#include "qat/batch_prefetcher.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "qat/builtin_model.h"
#include "qat/model_analysis.h"
#include "qat/quantized_model.h"
#include "qat/test_models.h"
#include "qat/trainer.h"

namespace autoq::qat {
namespace {

using test_util::MemorySource;
using test_util::RandomData;
using test_util::Streamed;

TEST(StreamedDatasetTest, BatchesEqualTheInMemoryOnes) {
  at::manual_seed(3);
  TensorDataset mem = RandomData({3, 8, 8}, 40, 5);
  mem.mean = {0.5f};
  mem.std = {0.25f};
  std::shared_ptr<const MemorySource> source;
  const TensorDataset str = Streamed(mem, &source);
  ASSERT_TRUE(str.streamed());
  EXPECT_EQ(ImageShape(str), (std::vector<int64_t>{3, 8, 8}));
  const at::Tensor idx = at::tensor(std::vector<int64_t>{7, 0, 39, 7},
                                    at::kLong);
  EXPECT_TRUE(at::equal(GatherImages(str, idx), GatherImages(mem, idx)));
  EXPECT_TRUE(at::equal(GatherImagesOnThisThread(str, idx),
                        GatherImages(mem, idx)));
  EXPECT_TRUE(at::equal(SliceImages(str, 5, 17), SliceImages(mem, 5, 17)));
  // Head and Select keep the source and pick rows.
  const TensorDataset head = Head(str, 10);
  EXPECT_TRUE(head.streamed());
  EXPECT_EQ(head.size(), 10);
  EXPECT_TRUE(at::equal(SliceImages(head, 0, 10), SliceImages(mem, 0, 10)));
  const at::Tensor pick = at::tensor(std::vector<int64_t>{30, 2}, at::kLong);
  const TensorDataset sel = Select(str, pick);
  EXPECT_TRUE(at::equal(SliceImages(sel, 0, 2), GatherImages(mem, pick)));
  EXPECT_TRUE(at::equal(sel.labels, mem.labels.index_select(0, pick)));
  EXPECT_GT(source->loads(), 0);
}

TEST(BatchPrefetcherTest, ReturnsEveryBatchInOrderDecodingAtMostDepthAhead) {
  at::manual_seed(4);
  const TensorDataset mem = RandomData({1, 4, 4}, 64, 3);
  std::shared_ptr<const MemorySource> source;
  const TensorDataset str = Streamed(mem, &source);
  const at::Tensor perm = at::randperm(64, at::kLong);
  std::vector<at::Tensor> batches;
  for (int64_t b = 0; b < 16; ++b) batches.push_back(perm.slice(0, 4 * b, 4 * b + 4));
  const int threads = 2, depth = 3;
  BatchPrefetcher prefetch(str, batches, threads, depth);
  for (size_t b = 0; b < batches.size(); ++b) {
    // Give the decoders time to run as far ahead as they may.
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    // Taken so far: b batches; decoded at most depth beyond them.
    EXPECT_LE(source->loads(), static_cast<int64_t>((b + depth) * 4))
        << "batch " << b;
    EXPECT_TRUE(at::equal(prefetch.Next(), GatherImages(mem, batches[b])))
        << "batch " << b;
  }
  EXPECT_EQ(source->loads(), 64);
}

TEST(BatchPrefetcherTest, ADecoderErrorReachesTheConsumerNamingTheFile) {
  at::manual_seed(5);
  const TensorDataset mem = RandomData({1, 4, 4}, 16, 3);
  const TensorDataset str = Streamed(mem, nullptr, /*fail_at=*/9);
  std::vector<at::Tensor> batches;
  for (int64_t b = 0; b < 4; ++b) {
    batches.push_back(at::arange(4 * b, 4 * b + 4, at::kLong));
  }
  BatchPrefetcher prefetch(str, batches, 2, 2);
  EXPECT_NO_THROW(prefetch.Next());
  EXPECT_NO_THROW(prefetch.Next());
  try {
    prefetch.Next();
    ADD_FAILURE() << "no error for the bad image";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("image9.jpg"), std::string::npos)
        << e.what();
  }
  // Destroyed with a batch still undecoded or unread: joins cleanly.
}

TEST(BatchPrefetcherTest, FineTuneOnAStreamedDatasetIsTheSameFineTune) {
  at::manual_seed(6);
  torch::jit::Module model = MakeBuiltinModel();
  absl::StatusOr<ModelAnalysis> a = AnalyzeModel(model, {1, 28, 28});
  ASSERT_TRUE(a.ok()) << a.status();
  TensorDataset train = RandomData({1, 28, 28}, 256, 10);
  const TensorDataset val = RandomData({1, 28, 28}, 64, 10);
  QatRecipe r;
  r.epochs = 1;
  r.batch_size = 32;
  r.seed = 11;
  ProgressOptions quiet;
  quiet.out = nullptr;
  auto run = [&](const TensorDataset& data) -> std::vector<double> {
    QuantizedModelOptions o;
    o.bits.assign(static_cast<size_t>(a->num_genes()), LayerBits{4, 8});
    auto qm = QuantizedModel::Create(model, *a, o);
    EXPECT_TRUE(qm.ok()) << qm.status();
    if (!qm.ok()) return {};
    absl::StatusOr<QatResult> res = RunQat(**qm, data, val, nullptr, r, quiet);
    EXPECT_TRUE(res.ok()) << res.status();
    if (!res.ok()) return {};
    return {res->curve.back().train_loss, res->curve.back().val_top1};
  };
  const std::vector<double> in_memory = run(train);
  const std::vector<double> streamed = run(Streamed(train, nullptr));
  ASSERT_EQ(in_memory.size(), 2u);
  EXPECT_EQ(streamed, in_memory);
  // A file that fails mid-epoch fails the fine-tune, naming it.
  QuantizedModelOptions o;
  o.bits.assign(static_cast<size_t>(a->num_genes()), LayerBits{4, 8});
  auto qm = QuantizedModel::Create(model, *a, o);
  ASSERT_TRUE(qm.ok());
  absl::StatusOr<QatResult> bad =
      RunQat(**qm, Streamed(train, nullptr, 200), val, nullptr, r, quiet);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("image200.jpg"), std::string::npos)
      << bad.status();
}

}  // namespace
}  // namespace autoq::qat
