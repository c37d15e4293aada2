// The search logic on a fake evaluator: encoding, the cache in front of the
// evaluator, NSGA-II determinism and resumption from checkpoints.
#include "search/search_driver.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "search/chromosome.h"
#include "search/evaluation.h"
#include "search/problem.h"
#include "search/result_store.h"
#include "search/test_fakes.h"
#include "tests/testing.h"

namespace autoq::search {
namespace {

using testing::FakeAnalysis;
using testing::FakeEvaluator;

TEST(EncodingTest, UniformAndPinned) {
  evaluator::SearchOptions o;
  o.pin_first_last = true;
  Encoding e(5, o);
  EXPECT_EQ(e.dimension(), 3);
  std::vector<qat::LayerBits> bits = e.Decode({4, 5, 6});
  ASSERT_EQ(bits.size(), 5u);
  EXPECT_EQ(bits[0].wbits, 8);
  EXPECT_EQ(bits[1].wbits, 4);
  EXPECT_EQ(bits[3].wbits, 6);
  EXPECT_EQ(bits[4].wbits, 8);
  for (const qat::LayerBits& b : bits) EXPECT_EQ(b.abits, 8);
  EXPECT_EQ(e.Decode({1, 9, 5})[1].wbits, 2);  // clamped
  EXPECT_EQ(e.Decode({1, 9, 5})[2].wbits, 8);
}

TEST(EncodingTest, ActivationGenes) {
  evaluator::SearchOptions o;
  o.search_activation_bits = true;
  Encoding e(3, o);
  EXPECT_EQ(e.dimension(), 6);
  std::vector<qat::LayerBits> bits = e.Decode({2, 3, 4, 5, 6, 7});
  EXPECT_EQ(bits[0].wbits, 2);
  EXPECT_EQ(bits[0].abits, 5);
  EXPECT_EQ(bits[2].abits, 7);
  EXPECT_EQ(e.UniformBits(4)[1].abits, 4);
  EXPECT_EQ(qat::FormatBits(bits), "2,3,4 a:5,6,7");
}

TEST(EncodingTest, InitialPopulationStartsWithUniformConfigs) {
  evaluator::SearchOptions o;
  Encoding e(6, o);
  std::vector<std::vector<int>> pop = e.InitialPopulation(16, 7);
  ASSERT_EQ(pop.size(), 16u);
  for (int b = 2; b <= 8; ++b)
    EXPECT_EQ(pop[static_cast<size_t>(b - 2)], e.Uniform(b));
  std::set<std::vector<int>> distinct(pop.begin(), pop.end());
  EXPECT_EQ(distinct.size(), 16u);
  EXPECT_EQ(e.InitialPopulation(16, 7), pop);  // seeded
  EXPECT_NE(e.InitialPopulation(16, 8), pop);
}

TEST(EncodingTest, SeedsShareTheInitialPopulationWithUniformConfigs) {
  evaluator::SearchOptions o;
  o.pin_first_last = true;
  Encoding e(6, o);
  // Pinned layers drop out; out-of-range bits are clamped.
  EXPECT_EQ(e.EncodeWeights({8, 3, 4, 9, 1, 8}),
            (std::vector<int>{3, 4, 8, 2}));
  const std::vector<std::vector<int>> seeds = {
      {3, 4, 5, 6}, {4, 4, 5, 6}, e.Uniform(8), {5, 5, 6, 6}, {6, 6, 7, 7}};
  std::vector<std::vector<int>> pop = e.InitialPopulation(8, 7, seeds);
  ASSERT_EQ(pop.size(), 8u);
  // Uniform 8, then 4, 5, 3, ..., a seed after each (the seed equal to
  // uniform 8 is skipped).
  EXPECT_EQ(pop[0], e.Uniform(8));
  EXPECT_EQ(pop[1], seeds[0]);
  EXPECT_EQ(pop[2], e.Uniform(4));
  EXPECT_EQ(pop[3], seeds[1]);
  EXPECT_EQ(pop[4], e.Uniform(5));
  EXPECT_EQ(pop[5], seeds[3]);
  EXPECT_EQ(pop[6], e.Uniform(3));
  EXPECT_EQ(pop[7], seeds[4]);
  // Every uniform configuration comes once a population is large enough.
  std::vector<std::vector<int>> big = e.InitialPopulation(20, 7, seeds);
  for (int b = 2; b <= 8; ++b) {
    EXPECT_NE(std::find(big.begin(), big.end(), e.Uniform(b)), big.end()) << b;
  }
  // Without seeds the order is unchanged: uniform 2..8 first.
  EXPECT_EQ(e.InitialPopulation(8, 7)[0], e.Uniform(2));
}

class SearchTest : public ::testing::Test {
 protected:
  SearchTest() : analysis_(FakeAnalysis(6)), evaluator_(&analysis_) {}

  KeyContext Keys() const {
    return KeyContext{"model", "data", "search-recipe", "final-recipe",
                      "sensitivity", "ptq"};
  }

  absl::StatusOr<SearchOutcome> Search(ResultStore* store,
                                       evaluator::Evaluator* ev,
                                       int generations, EvalStats* stats) {
    evaluator::SearchOptions o;
    o.population = 8;
    o.generations = generations;
    o.seed = 3;
    CachedEvaluation evaluation(store, ev, Keys());
    auto objectives = std::make_shared<Objectives>(
        Encoding(6, o), &analysis_, qat::Granularity::kPerTensorAffine, o, 90.0,
        &evaluation);
    const SearchContext ctx = testing::QuietContext("job", analysis_);
    absl::StatusOr<SearchOutcome> out =
        RunSearch(o, *objectives, evaluation, *store, ctx);
    if (stats != nullptr) *stats = evaluation.stats();
    return out;
  }

  qat::ModelAnalysis analysis_;
  FakeEvaluator evaluator_;
  ::autoq::testing::TempDir dir_;
};

TEST_F(SearchTest, CacheAnswersRepeatsAndNeverRunsAKeyTwice) {
  auto store = ResultStore::Open(dir_.path() + "/a.db");
  ASSERT_TRUE(store.ok()) << store.status();
  CachedEvaluation evaluation(store->get(), &evaluator_, Keys());
  std::vector<qat::LayerBits> a(6, {4, 8}), b(6, {6, 8});
  auto first = evaluation.Evaluate(evaluator::Stage::kSearch, {a, b, a, a});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(evaluator_.runs(), 2);
  EXPECT_EQ(evaluation.stats().repeated, 2);
  EXPECT_DOUBLE_EQ((*first)[0].qat.best_val_top1,
                   (*first)[3].qat.best_val_top1);
  auto second = evaluation.Evaluate(evaluator::Stage::kSearch, {b, a});
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(evaluator_.runs(), 2);
  EXPECT_EQ(evaluation.stats().cached, 2);
  EXPECT_DOUBLE_EQ((*second)[1].qat.best_val_top1,
                   (*first)[0].qat.best_val_top1);
  // A final-stage key differs from the search key of the same bits.
  EXPECT_NE(evaluation.Key(evaluator::Stage::kSearch, a),
            evaluation.Key(evaluator::Stage::kFinal, a));
  auto final_stage = evaluation.Evaluate(evaluator::Stage::kFinal, {a});
  ASSERT_TRUE(final_stage.ok());
  EXPECT_EQ(evaluator_.runs(), 3);
  auto artifact = evaluation.Artifact(
      evaluation.Key(evaluator::Stage::kFinal, a), "model.pt");
  ASSERT_TRUE(artifact.ok());
  EXPECT_EQ(artifact->value_or(""), "ts");
}

TEST_F(SearchTest, FailedBatchKeepsTheFinishedResults) {
  auto store = ResultStore::Open(dir_.path() + "/a.db");
  ASSERT_TRUE(store.ok());
  CachedEvaluation evaluation(store->get(), &evaluator_, Keys());
  std::vector<qat::LayerBits> a(6, {4, 8}), b(6, {6, 8});
  ASSERT_TRUE(evaluation.Evaluate(evaluator::Stage::kSearch, {a}).ok());
  evaluator_.set_fail_all(true);
  auto failed = evaluation.Evaluate(evaluator::Stage::kSearch, {a, b});
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kResourceExhausted);
  evaluator_.set_fail_all(false);
  auto count = (*store)->CountResults();
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 1);
}

TEST_F(SearchTest, SameSeedSameFront) {
  auto s1 = ResultStore::Open(dir_.path() + "/1.db");
  auto s2 = ResultStore::Open(dir_.path() + "/2.db");
  ASSERT_TRUE(s1.ok() && s2.ok());
  FakeEvaluator other(&analysis_);
  auto a = Search(s1->get(), &evaluator_, 4, nullptr);
  auto b = Search(s2->get(), &other, 4, nullptr);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(a->population, b->population);
  EXPECT_EQ(a->front, b->front);
  EXPECT_FALSE(a->front.empty());
  EXPECT_EQ(evaluator_.max_runs_of_one_key(), 1);
}

TEST_F(SearchTest, ResumesFromTheLastCheckpointWithoutRecomputing) {
  auto full_store = ResultStore::Open(dir_.path() + "/full.db");
  ASSERT_TRUE(full_store.ok());
  FakeEvaluator full_eval(&analysis_);
  auto full = Search(full_store->get(), &full_eval, 4, nullptr);
  ASSERT_TRUE(full.ok());

  // Stop after two generations, then ask for four on the same database.
  auto store = ResultStore::Open(dir_.path() + "/part.db");
  ASSERT_TRUE(store.ok());
  auto part = Search(store->get(), &evaluator_, 2, nullptr);
  ASSERT_TRUE(part.ok());
  const int runs_after_two = evaluator_.runs();
  EvalStats stats;
  auto resumed = Search(store->get(), &evaluator_, 4, &stats);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->resumed_from, 2);
  EXPECT_EQ(resumed->population, full->population);
  // The archive (every configuration scored) survives the restart too.
  EXPECT_EQ(resumed->archive, full->archive);
  EXPECT_EQ(resumed->front, full->front);
  EXPECT_EQ(evaluator_.runs() - runs_after_two,
            full_eval.runs() - runs_after_two);
  EXPECT_EQ(evaluator_.max_runs_of_one_key(), 1);

  // Rerunning the finished job computes nothing.
  const int runs = evaluator_.runs();
  auto again = Search(store->get(), &evaluator_, 4, &stats);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(evaluator_.runs(), runs);
  EXPECT_EQ(again->population, full->population);
}

TEST_F(SearchTest, OverBudgetConfigurationsAreNotTrained) {
  auto store = ResultStore::Open(dir_.path() + "/b.db");
  ASSERT_TRUE(store.ok());
  evaluator::SearchOptions o;
  o.size_budget_bytes =
      qat::ComputeCost(analysis_, std::vector<qat::LayerBits>(6, {4, 8}),
                       qat::Granularity::kPerTensorAffine)
          .size_bytes;
  CachedEvaluation evaluation(store->get(), &evaluator_, Keys());
  Objectives objectives(Encoding(6, o), &analysis_,
                        qat::Granularity::kPerTensorAffine, o, 90.0,
                        &evaluation);
  auto scores =
      objectives.Score({std::vector<int>(6, 8), std::vector<int>(6, 3)});
  ASSERT_TRUE(scores.ok());
  EXPECT_GE((*scores)[0][0], 100.0);
  EXPECT_LT((*scores)[1][0], 100.0);
  EXPECT_EQ(evaluator_.runs(), 1);
}

// The final front is the non-dominated set of everything scored inside the
// region of interest, not of the last population: no configuration scored
// inside the region is better than the front in both objectives.
TEST_F(SearchTest, FinalFrontIsTheArchiveFrontInsideTheRegion) {
  auto store = ResultStore::Open(dir_.path() + "/arch.db");
  ASSERT_TRUE(store.ok());
  auto out = Search(store->get(), &evaluator_, 4, nullptr);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_FALSE(out->front.empty());
  ASSERT_EQ(out->archive.size(), out->archive_fitness.size());
  EXPECT_GE(out->archive.size(), out->population.size());
  std::set<std::vector<int>> archived(out->archive.begin(), out->archive.end());
  for (const std::vector<int>& g : out->population) {
    EXPECT_TRUE(archived.count(g)) << "a population member is not archived";
  }
  const double max_drop = evaluator::SearchOptions().max_accuracy_drop;
  int inside = 0;
  for (size_t i = 0; i < out->archive.size(); ++i) {
    const std::vector<double>& f = out->archive_fitness[i];
    if (f[0] > max_drop) continue;
    ++inside;
    for (size_t k : out->front) {
      const std::vector<double>& p = out->archive_fitness[k];
      EXPECT_FALSE(f[0] < p[0] && f[1] < p[1])
          << "archived point (" << f[0] << ", " << f[1]
          << ") dominates front point (" << p[0] << ", " << p[1] << ")";
    }
  }
  EXPECT_GT(inside, 0);
  for (size_t k : out->front) EXPECT_LE(out->archive_fitness[k][0], max_drop);
}

// search.score_noise: a larger configuration must score more than the
// noise above every smaller one to reach the final front.
TEST(FrontIndicesTest, ThinsGainsWithinTheScoreNoise) {
  const std::vector<std::vector<int>> genes = {{2}, {3}, {4}, {5}, {6}, {7}};
  const std::vector<std::vector<double>> fitness = {
      {1.50, 10}, {1.45, 11}, {1.00, 12}, {0.95, 13}, {0.80, 14}, {3.0, 5}};
  EXPECT_EQ(FrontIndices(genes, fitness, 2.0),
            (std::vector<size_t>{0, 1, 2, 3, 4}));
  // 1.45 gains 0.05 over 1.50; 0.95 gains 0.05 over 1.00; 0.80 gains 0.20.
  EXPECT_EQ(FrontIndices(genes, fitness, 2.0, 0.1),
            (std::vector<size_t>{0, 2, 4}));
  // The region still applies first: {3.0, 5} is outside.
  EXPECT_EQ(FrontIndices(genes, fitness, 100.0, 0.1),
            (std::vector<size_t>{5, 0, 2, 4}));
}

// A configuration beyond search.max_accuracy_drop is dominated by every
// one inside, however small it is.
TEST_F(SearchTest, OutsideTheRegionRanksBehindEveryConfigurationInside) {
  auto store = ResultStore::Open(dir_.path() + "/roi.db");
  ASSERT_TRUE(store.ok());
  evaluator::SearchOptions o;
  o.max_accuracy_drop = 2.0;
  CachedEvaluation evaluation(store->get(), &evaluator_, Keys());
  Objectives objectives(Encoding(6, o), &analysis_,
                        qat::Granularity::kPerTensorAffine, o, 90.0,
                        &evaluation);
  auto scores =
      objectives.Score({std::vector<int>(6, 2), std::vector<int>(6, 8)});
  ASSERT_TRUE(scores.ok()) << scores.status();
  const std::vector<double>& small = (*scores)[0];  // 2 bits: far outside
  const std::vector<double>& large = (*scores)[1];  // 8 bits: inside
  ASSERT_GT(small[0], 2.0);
  ASSERT_LE(large[0], 2.0);
  EXPECT_LT(large[0], small[0]);
  EXPECT_LT(large[1], small[1]);  // the penalty outweighs 4x fewer bits
  EXPECT_EQ(objectives.archive().size(), 2u);
}

// Nothing inside the region: the final front is the most accurate
// configuration, not empty.
TEST_F(SearchTest, EmptyRegionFallsBackToTheMostAccurate) {
  auto store = ResultStore::Open(dir_.path() + "/none.db");
  ASSERT_TRUE(store.ok());
  evaluator::SearchOptions o;
  o.population = 8;
  o.generations = 1;
  o.min_bits = 2;
  o.max_bits = 3;  // every configuration loses more than 2 points
  CachedEvaluation evaluation(store->get(), &evaluator_, Keys());
  Objectives objectives(Encoding(6, o), &analysis_,
                        qat::Granularity::kPerTensorAffine, o, 90.0,
                        &evaluation);
  const SearchContext ctx = testing::QuietContext("none", analysis_);
  auto out = RunSearch(o, objectives, evaluation, *store->get(), ctx);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->front.size(), 1u);
  const double best = out->archive_fitness[out->front[0]][0];
  EXPECT_GT(best, 2.0);
  for (const std::vector<double>& f : out->archive_fitness) {
    EXPECT_GE(f[0], best);
  }
}

}  // namespace
}  // namespace autoq::search
