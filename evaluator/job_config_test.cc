#include "evaluator/job_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace autoq::evaluator {
namespace {

using ::testing::HasSubstr;

constexpr char kMinimal[] = R"({"model": {"path": "m.pt"}})";

TEST(JobConfigTest, DefaultsFilledIn) {
  absl::StatusOr<JobConfig> c = ParseJobConfig(kMinimal);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->name, "job");
  EXPECT_EQ(c->data_spec, "fashion-mnist");
  EXPECT_EQ(c->search.population, 8);
  EXPECT_EQ(c->search.min_bits, 2);
  EXPECT_EQ(c->search.max_bits, 8);
  EXPECT_EQ(c->search_recipe.epochs, 1);
  EXPECT_EQ(c->final_front.recipe.epochs, 3);
  EXPECT_TRUE(c->final_front.compare_uniform);
  EXPECT_TRUE(c->final_front.ptq_baselines);
  EXPECT_EQ(c->final_front.ptq_calibration_images, 1024);
  EXPECT_EQ(c->devices, std::vector<std::string>{"cpu"});
  EXPECT_EQ(c->output_dir, "runs/job");
  EXPECT_EQ(c->database, "runs/job/autoq.db");
}

TEST(JobConfigTest, ReadsEveryGroupInBothNameStyles) {
  absl::StatusOr<JobConfig> c = ParseJobConfig(R"({
    "name": "j1", "model": {"path": "m.pt", "inputShape": "3,32,32"},
    "dataset": {"spec": "cifar10:/d", "val_size": 100, "testSubset": 50},
    "scheme": {"granularity": "per-channel", "range": "mse"},
    "search": {"population": 12, "generations": 2, "min_bits": 3,
               "searchActivationBits": true, "size_budget_kb": 10,
               "qat": {"epochs": 0, "train_subset": 256, "lr": 0.01,
                       "randomResizedCrop": 0.08}},
    "final_front": {"recipe": {"epochs": 5}, "bn_fold": "exact",
                    "compare_uniform": false, "ptqBaselines": false,
                    "ptq_calibration_images": 256},
    "workers": {"devices": ["cpu", "cpu"], "threads": 1},
    "output": {"dir": "/tmp/x", "database": "/tmp/cache.db"}})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->input_shape, (std::vector<int64_t>{3, 32, 32}));
  EXPECT_EQ(c->val_size, 100);
  EXPECT_EQ(c->test_subset, 50);
  EXPECT_EQ(c->scheme.granularity, qat::Granularity::kPerChannelSymmetric);
  EXPECT_EQ(c->scheme.range, qat::RangeMethod::kMse);
  EXPECT_EQ(c->search.population, 12);
  EXPECT_EQ(c->search.min_bits, 3);
  EXPECT_TRUE(c->search.search_activation_bits);
  EXPECT_EQ(c->search.size_budget_bytes, 10 * 1024);
  EXPECT_EQ(c->search_recipe.epochs, 0);
  EXPECT_EQ(c->search_train_subset, 256);
  EXPECT_DOUBLE_EQ(c->search_recipe.lr, 0.01);
  EXPECT_DOUBLE_EQ(c->search_recipe.random_resized_crop, 0.08);
  EXPECT_DOUBLE_EQ(c->final_front.recipe.random_resized_crop, 0);
  EXPECT_EQ(c->final_front.recipe.epochs, 5);
  EXPECT_EQ(c->final_front.bn_fold, qat::BnFold::kExact);
  EXPECT_FALSE(c->final_front.compare_uniform);
  EXPECT_FALSE(c->final_front.ptq_baselines);
  EXPECT_EQ(c->final_front.ptq_calibration_images, 256);
  EXPECT_EQ(c->devices.size(), 2u);
  EXPECT_EQ(c->threads, 1);
  EXPECT_EQ(c->database, "/tmp/cache.db");
}

TEST(JobConfigTest, PopulationRoundedUpWithWarning) {
  absl::StatusOr<JobConfig> c =
      ParseJobConfig(R"({"model": {"path": "m.pt"}, "search": {"population": 10}})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->search.population, 12);
  ASSERT_EQ(c->warnings.size(), 1u);
  EXPECT_THAT(c->warnings[0], HasSubstr("rounded up to 12"));
}

struct BadCase {
  const char* json;
  const char* expected;  // substring of the error
};

class JobConfigErrorTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(JobConfigErrorTest, NamesTheField) {
  absl::StatusOr<JobConfig> c = ParseJobConfig(GetParam().json);
  ASSERT_FALSE(c.ok()) << GetParam().json;
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr(GetParam().expected));
}

INSTANTIATE_TEST_SUITE_P(
    BadConfigs, JobConfigErrorTest,
    ::testing::Values(
        BadCase{R"({"model": {"path": "m.pt"}, "serch": {}})", "serch"},
        BadCase{R"({"model": {"path": "m.pt", "bits": 3}})", "bits"},
        BadCase{R"({"model": {"path": "m.pt"}, "search": {"population": 3}})",
                "search.population: 3"},
        BadCase{R"({"model": {"path": "m.pt"}, "search": {"population": -8}})",
                "search.population"},
        BadCase{R"({"model": {"path": "m.pt"}, "search": {"generations": -1}})",
                "search.generations"},
        BadCase{R"({"model": {"path": "m.pt"}, "search": {"max_bits": 9}})",
                "search.max_bits: 9 is outside 2..8"},
        BadCase{R"({"model": {"path": "m.pt"}, "search": {"min_bits": 1}})",
                "search.min_bits: 1 is outside 2..8"},
        BadCase{R"({"model": {"path": "m.pt"}, "search": {"min_bits": 6, "max_bits": 4}})",
                "search.min_bits"},
        BadCase{R"({"model": {"path": "m.pt"}, "search": {"activation_bits": 12}})",
                "search.activation_bits"},
        BadCase{R"({"model": {"path": "m.pt"}, "search": {"size_budget_kb": -1}})",
                "search.size_budget_kb"},
        BadCase{R"({"model": {"path": "m.pt"}, "search": {"max_accuracy_drop": 0}})",
                "search.max_accuracy_drop"},
        BadCase{R"({"model": {"path": "m.pt"}, "search": {"max_accuracy_drop": 101}})",
                "search.max_accuracy_drop"},
        BadCase{R"({"model": {"path": "m.pt"}, "search": {"strategy": "random"}})",
                "search.strategy: \"random\" is not one of guided, nsga2, knapsack"},
        BadCase{R"({"model": {"path": "m.pt"}, "search": {"strategy": "knapsack", "sensitivity_images": 0}})",
                "search.strategy: knapsack needs search.sensitivity_images > 0"},
        BadCase{R"({"model": {"path": "m.pt"}, "search": {"score_noise": -0.1}})",
                "search.score_noise"},
        BadCase{R"({"model": {"path": "m.pt"}, "search": {"screening": 0}})",
                "search.screening"},
        BadCase{R"({"model": {"path": "m.pt"}, "search": {"screening": 1001}})",
                "search.screening"},
        BadCase{R"({"model": {"path": "m.pt"}, "search": {"qat": {"batch_size": -5}}})",
                "search.qat.batch_size"},
        BadCase{R"({"model": {"path": "m.pt"}, "search": {"qat": {"train_subset": -1}}})",
                "search.qat.train_subset"},
        BadCase{R"({"model": {"path": "m.pt"}, "final_front": {"recipe": {"optimizer": "rmsprop"}}})",
                "final_front.recipe.optimizer"},
        BadCase{R"({"model": {"path": "m.pt"}, "search": {"qat": {"random_resized_crop": 2}}})",
                "search.qat.random_resized_crop"},
        BadCase{R"({"model": {"path": "m.pt"}, "final_front": {"ptq_calibration_images": 0}})",
                "final_front.ptq_calibration_images"},
        BadCase{R"({"model": {"path": "m.pt"}, "dataset": {"val_size": -10}})",
                "dataset.val_size"},
        BadCase{R"({"model": {"path": "m.pt"}, "scheme": {"granularity": "per-row"}})",
                "scheme.granularity"},
        BadCase{R"({"model": {"path": "m.pt"}, "workers": {"devices": ["tpu"]}})",
                "workers.devices"},
        BadCase{R"({"model": {"path": "m.pt"}, "name": "../etc"})", "name"},
        BadCase{R"({"search": {}})", "model.path"},
        BadCase{R"({"model": {"path": "m.pt"}, "search": {"population": "many"}})",
                "population"},
        BadCase{R"({"model": )", "invalid job spec"}));

TEST(JobConfigTest, MissingFileNamed) {
  absl::StatusOr<JobConfig> c = LoadJobConfig("/nonexistent/job.json");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("/nonexistent/job.json"));
}

TEST(JobConfigTest, ShippedConfigsParse) {
  for (const char* path : {"configs/fashion_mnist.json", "configs/gpu_node.json",
                           "configs/smoke.json"}) {
    absl::StatusOr<JobConfig> c = LoadJobConfig(path);
    EXPECT_TRUE(c.ok()) << path << ": " << c.status();
  }
}

}  // namespace
}  // namespace autoq::evaluator
