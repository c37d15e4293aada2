// NSGA-II's variation and selection steps, and the surrogate-screened
// generation on the fake evaluator (search/test_fakes.h).
#include "search/screening.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>

#include "qat/cost_model.h"
#include "search/offspring.h"
#include "search/pareto.h"
#include "search/result_store.h"
#include "search/search_driver.h"
#include "search/test_fakes.h"
#include "tests/testing.h"

namespace autoq::search {
namespace {

using testing::FakeAnalysis;
using testing::FakeEvaluator;

TEST(BreedTest, OffspringWithinBoundsAndFixedBySeed) {
  const std::vector<std::vector<int>> parents = {
      {2, 2, 2, 2}, {8, 8, 8, 8}, {4, 5, 6, 7}, {3, 3, 8, 8}};
  const std::vector<std::vector<double>> fitness = {
      {10, 1}, {0, 8}, {2, 5}, {5, 4}};
  Variation v;
  v.mutation = 0.25;
  std::mt19937 a(7), b(7), c(8);
  const auto first = Breed(parents, fitness, 50, v, a);
  const auto again = Breed(parents, fitness, 50, v, b);
  const auto other = Breed(parents, fitness, 50, v, c);
  ASSERT_EQ(first.size(), 50u);
  EXPECT_EQ(first, again);
  EXPECT_NE(first, other);
  for (const std::vector<int>& g : first) {
    ASSERT_EQ(g.size(), 4u);
    for (int x : g) {
      EXPECT_GE(x, 2);
      EXPECT_LE(x, 8);
    }
  }
  std::set<std::vector<int>> distinct(first.begin(), first.end());
  EXPECT_GT(distinct.size(), 10u);  // variation, not copies
  EXPECT_TRUE(Breed({{2, 2}}, {{1, 1}}, 5, v, a).empty());  // one parent
}

TEST(PickByPredictionTest, NonDominatedCandidatesFirst) {
  const std::vector<std::vector<double>> known = {{1, 10}, {2, 5}};
  const std::vector<std::vector<double>> candidates = {
      {3, 20},   // dominated by a known point
      {0.5, 8},  // on the front
      {2.5, 6},  // dominated
      {1.5, 4},  // on the front
  };
  std::vector<size_t> picked = PickByPrediction(known, candidates, 2);
  std::sort(picked.begin(), picked.end());
  EXPECT_EQ(picked, (std::vector<size_t>{1, 3}));
  EXPECT_EQ(PickByPrediction(known, candidates, 10).size(), 4u);
}

TEST(SurvivorsTest, KeepsTheBestByRank) {
  const std::vector<std::vector<double>> f = {
      {1, 1}, {5, 5}, {0, 3}, {3, 0}, {6, 6}};
  std::vector<size_t> s = Survivors(f, 3);
  std::sort(s.begin(), s.end());
  EXPECT_EQ(s, (std::vector<size_t>{0, 2, 3}));
  EXPECT_EQ(Survivors(f, 9).size(), 5u);
}

TEST(SurrogateFeaturesTest, BitsPriorAndActivations) {
  qat::SensitivityTable prior;
  prior.reference_loss = 1.0;
  prior.loss = {std::vector<double>(7, 1.0), std::vector<double>(7, 1.0)};
  prior.loss[1][0] = 1.5;  // layer 1 at 2 bits
  const std::vector<qat::LayerBits> bits = {{8, 8}, {2, 4}};
  EXPECT_EQ(SurrogateFeatures(bits, nullptr, false),
            (std::vector<double>{1.0 / 256, 0.25}));
  const std::vector<double> x = SurrogateFeatures(bits, &prior, true);
  ASSERT_EQ(x.size(), 6u);
  EXPECT_DOUBLE_EQ(x[2], 0.0);
  EXPECT_DOUBLE_EQ(x[3], 0.5);
  EXPECT_DOUBLE_EQ(x[5], 1.0 / 16);
}

// Every configuration scores the same: the surrogate cannot be fitted.
class ConstantEvaluator : public evaluator::Evaluator {
 public:
  explicit ConstantEvaluator(const qat::ModelAnalysis* a) : analysis_(a) {}
  void Run(const std::vector<evaluator::EvalTask>& tasks,
           const Callback& done) override {
    for (size_t t = 0; t < tasks.size(); ++t) {
      evaluator::EvalRecord r;
      r.device = "constant";
      r.qat.best_val_top1 = 89.0;
      r.qat.size_bytes = qat::ComputeCost(*analysis_, tasks[t].bits,
                                          qat::Granularity::kPerTensorAffine)
                             .size_bytes;
      done(t, r);
    }
  }

 private:
  const qat::ModelAnalysis* analysis_;
};

class ScreeningTest : public ::testing::Test {
 protected:
  ScreeningTest() : analysis_(FakeAnalysis(6)), evaluator_(&analysis_) {}

  // One generation after an initial population of `population`.
  absl::StatusOr<ScreeningStats> OneGeneration(evaluator::Evaluator* ev,
                                               int population) {
    auto store = ResultStore::Open(dir_.path() + "/g.db");
    if (!store.ok()) return store.status();
    store_ = *std::move(store);
    evaluator::SearchOptions o;
    o.population = population;
    evaluation_ = std::make_unique<CachedEvaluation>(
        store_.get(), ev, KeyContext{"m", "d", "s", "f", "p", "q"});
    objectives_ = std::make_unique<Objectives>(
        Encoding(6, o), &analysis_, qat::Granularity::kPerTensorAffine, o, 90.0,
        evaluation_.get());
    genes_ = objectives_->encoding().InitialPopulation(population, 1);
    auto scores = objectives_->Score(genes_);
    if (!scores.ok()) return scores.status();
    fitness_ = *scores;
    return ScreenedGeneration(o, *objectives_, nullptr, 11, &genes_, &fitness_);
  }

  qat::ModelAnalysis analysis_;
  FakeEvaluator evaluator_;
  ::autoq::testing::TempDir dir_;
  std::unique_ptr<ResultStore> store_;
  std::unique_ptr<CachedEvaluation> evaluation_;
  std::unique_ptr<Objectives> objectives_;
  std::vector<std::vector<int>> genes_;
  std::vector<std::vector<double>> fitness_;
};

TEST_F(ScreeningTest, ScreensWhenTheSurrogateRanksWell) {
  absl::StatusOr<ScreeningStats> s = OneGeneration(&evaluator_, 16);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->screened) << s->why;
  EXPECT_GE(s->cv_tau, kMinSurrogateTau);
  EXPECT_EQ(s->training_rows, 16u);
  EXPECT_EQ(s->exploratory, 4u);
  EXPECT_EQ(s->by_prediction, 12u);
  EXPECT_GT(s->bred, 16u);
  EXPECT_EQ(genes_.size(), 16u);
  EXPECT_EQ(objectives_->archive().size(), 32u);  // 16 new ones scored
}

TEST_F(ScreeningTest, TooFewPointsFallBackToPlainOffspring) {
  absl::StatusOr<ScreeningStats> s = OneGeneration(&evaluator_, 4);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(s->screened);
  EXPECT_NE(s->why.find("only 4 configurations"), std::string::npos) << s->why;
  EXPECT_EQ(s->exploratory, 4u);
  EXPECT_EQ(genes_.size(), 4u);
}

TEST_F(ScreeningTest, ConstantScoresFallBackToPlainOffspring) {
  ConstantEvaluator constant(&analysis_);
  absl::StatusOr<ScreeningStats> s = OneGeneration(&constant, 12);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(s->screened);
  EXPECT_NE(s->why.find("the same"), std::string::npos) << s->why;
  EXPECT_EQ(genes_.size(), 12u);
}

// On the fake (a loss additive in 2^-bits, like real models' first order),
// screening finds a better front in the region of interest than plain
// offspring with the same number of evaluations, in the median over seeds.
TEST_F(ScreeningTest, BeatsPlainOffspringAtEqualEvaluations) {
  auto region_hv = [&](int screening, uint32_t seed) {
    auto store =
        ResultStore::Open(dir_.path() + "/hv" + std::to_string(screening) +
                          "_" + std::to_string(seed) + ".db");
    EXPECT_TRUE(store.ok());
    evaluator::SearchOptions o;
    o.population = 8;
    o.generations = 3;
    o.seed = seed;
    o.screening = screening;
    o.max_accuracy_drop = 2.0;
    FakeEvaluator ev(&analysis_);
    CachedEvaluation evaluation(store->get(), &ev,
                                KeyContext{"m", "d", "s", "f", "p", "q"});
    Objectives objectives(Encoding(6, o), &analysis_,
                          qat::Granularity::kPerTensorAffine, o, 90.0,
                          &evaluation);
    const SearchContext ctx = testing::QuietContext("job", analysis_);
    absl::StatusOr<SearchOutcome> out =
        RunSearch(o, objectives, evaluation, **store, ctx);
    EXPECT_TRUE(out.ok()) << out.status();
    std::vector<AccuracySize> points;
    for (size_t i : out->front) {
      points.push_back({90.0 - out->archive_fitness[i][0],
                        static_cast<int64_t>(
                            std::llround(out->archive_fitness[i][1] * 1024))});
    }
    const int64_t size8 =
        qat::ComputeCost(analysis_, objectives.encoding().UniformBits(8),
                         qat::Granularity::kPerTensorAffine)
            .size_bytes;
    return RegionHypervolume(points, 90.0, 2.0, size8);
  };
  std::vector<double> screened, plain;
  for (uint32_t seed = 1; seed <= 5; ++seed) {
    screened.push_back(region_hv(16, seed));
    plain.push_back(region_hv(1, seed));
  }
  std::sort(screened.begin(), screened.end());
  std::sort(plain.begin(), plain.end());
  EXPECT_GT(screened[2], plain[2]);
}

}  // namespace
}  // namespace autoq::search
