#include "search/report.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/testing.h"

namespace autoq::search {
namespace {

namespace fs = std::filesystem;

using ::autoq::testing::ReadFile;
using ::autoq::testing::TempDir;

bool Contains(const std::string& s, const std::string& needle) {
  return s.find(needle) != std::string::npos;
}

FrontPoint Point(const std::string& label, bool uniform, std::vector<int> w,
                 int64_t size, double test) {
  FrontPoint p;
  p.label = label;
  p.uniform = uniform;
  p.abits = std::vector<int>(w.size(), 8);
  p.wbits = std::move(w);
  p.size_bytes = size;
  p.bops = size * 100;
  p.search_val_top1 = test - 1;
  p.val_top1 = test + 0.5;
  p.test_top1 = test;
  return p;
}

FrontPoint Uniform(int bits, int64_t size, double test) {
  return Point("uniform-" + std::to_string(bits), true,
               std::vector<int>(4, bits), size, test);
}

// Float: 90 %, 4000 bytes. Uniform 2/4/8 bits: 250 B 60 %, 500 B 85 %,
// 1000 B 89.5 %.
FrontReport BaseReport() {
  FrontReport r;
  r.job_name = "mnv2 <fashion> & co";
  r.layer_names = {"conv1", "layer1.0.conv", "layer2.0.conv", "fc"};
  r.float_val_top1 = 90.5;
  r.float_test_top1 = 90;
  r.float_size_bytes = 4000;
  r.uniform = {Uniform(2, 250, 60), Uniform(4, 500, 85),
               Uniform(8, 1000, 89.5)};
  return r;
}

TEST(CompareWithUniformTest, FrontBeatsUniform) {
  FrontReport r = BaseReport();
  // front-1: 400 B at 86 %: only the 8-bit uniform is as accurate, and it
  // is larger (1000 B). Qualifies.
  // front-2: 700 B at 85 %: the 4-bit uniform is as accurate and smaller.
  // front-3: 1200 B at 89.8 %: more accurate than every uniform: qualifies.
  // front-4: 200 B at 70 %: smaller than the 4- and 8-bit ones: qualifies.
  r.front = {Point("front-1", false, {8, 4, 2, 4}, 400, 86),
             Point("front-2", false, {8, 4, 4, 8}, 700, 85),
             Point("front-3", false, {8, 8, 8, 8}, 1200, 89.8),
             Point("front-4", false, {4, 2, 2, 2}, 200, 70)};
  r.front[2].uniform = true;
  const FrontComparison c = CompareWithUniform(r);
  EXPECT_EQ(c.beating_points,
            (std::vector<std::string>{"front-1", "front-3", "front-4"}));
  EXPECT_GT(c.front_hypervolume, c.uniform_hypervolume);
  EXPECT_TRUE(c.beats_uniform());
  // Uniform by hand: x = loss, y = size / 4000, ref (1, 1):
  // (0.00556, 0.25), (0.0556, 0.125), (0.3333, 0.0625).
  const double u = (1 - 0.5 / 90) * (1 - 0.25) +
                   (1 - 5.0 / 90) * (0.25 - 0.125) +
                   (1 - 30.0 / 90) * (0.125 - 0.0625);
  EXPECT_NEAR(c.uniform_hypervolume, u, 1e-12);
}

TEST(CompareWithUniformTest, FrontDoesNotBeatUniform) {
  FrontReport r = BaseReport();
  // Each point is matched by a uniform configuration that is at least as
  // accurate and no larger (equal size does not count as smaller).
  r.front = {Point("front-1", false, {8, 4, 4, 4}, 500, 84),
             Point("front-2", false, {8, 8, 4, 8}, 1000, 89)};
  const FrontComparison c = CompareWithUniform(r);
  EXPECT_TRUE(c.beating_points.empty());
  EXPECT_LT(c.front_hypervolume, c.uniform_hypervolume);
  EXPECT_FALSE(c.beats_uniform());
}

TEST(CompareWithUniformTest, NoMeasuredUniformMeansNothingToBeat) {
  FrontReport r = BaseReport();
  r.uniform = {Uniform(4, 500, -1)};
  r.front = {Point("front-1", false, {8, 4, 2, 4}, 400, 86),
             Point("front-2", false, {8, 4, 2, 4}, 400, -1)};
  const FrontComparison c = CompareWithUniform(r);
  EXPECT_TRUE(c.beating_points.empty());
  EXPECT_DOUBLE_EQ(c.uniform_hypervolume, 0);
  EXPECT_FALSE(c.beats_uniform());
}

// Inside a 2 pp region, a point far below float (front-4 at 70 %) no
// longer counts as beating uniform, and the region's hypervolume is
// normalized to the box loss <= 2 pp x size <= uniform 8-bit.
TEST(CompareWithUniformTest, OnlyPointsInsideTheRegionCount) {
  FrontReport r = BaseReport();
  r.max_accuracy_drop = 2;
  r.front = {Point("front-1", false, {8, 4, 4, 8}, 600, 89.8),
             Point("front-4", false, {4, 2, 2, 2}, 200, 70)};
  const FrontComparison c = CompareWithUniform(r);
  EXPECT_EQ(c.beating_points, std::vector<std::string>{"front-1"});
  EXPECT_EQ(c.region_size_bytes, 1000);  // uniform 8-bit
  // front-1: x = 0.2 / 2 = 0.1, y = 0.6; front-4 is outside.
  EXPECT_NEAR(c.region_front_hypervolume, 0.9 * 0.4, 1e-12);
  // uniform-8 sits on the size edge; uniform-4 and -2 lose too much.
  EXPECT_NEAR(c.region_uniform_hypervolume, 0.0, 1e-12);
  EXPECT_TRUE(c.beats_uniform());
  // Within 0.5 pp of float (90 %): front-1, and uniform-8 (89.5 %, exactly
  // 0.5 below, counts).
  EXPECT_EQ(c.front_smallest_near_float, 600);
  EXPECT_EQ(c.uniform_smallest_near_float, 1000);

  // The whole-space figure still counts front-4: it hid the difference.
  r.front = {Point("front-4", false, {4, 2, 2, 2}, 200, 70)};
  const FrontComparison only_far = CompareWithUniform(r);
  EXPECT_TRUE(only_far.beating_points.empty());
  EXPECT_FALSE(only_far.beats_uniform());
  EXPECT_GT(only_far.front_hypervolume, 0);
  EXPECT_EQ(only_far.front_smallest_near_float, 0);
}

TEST(FormatFrontTableTest, SortedBySizeWithNumbers) {
  std::vector<TableRow> rows = {
      {"front-2", 2048, 89.25, {8, 8, 4}, {8, 8, 8}},
      {"front-1", 1024, 87.5, {4, 4, 2}, {8, 8, 8}},
  };
  const std::string t = FormatFrontTable(rows, 90, 8192);
  SCOPED_TRACE(t);
  const std::vector<std::string> lines =
      absl::StrSplit(t, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 5u);  // header, rule, 2 rows, float
  EXPECT_TRUE(Contains(lines[0], "size KB"));
  EXPECT_TRUE(Contains(lines[0], "a 8"));  // shared activation bits
  EXPECT_TRUE(Contains(lines[2], "front-1"));
  EXPECT_TRUE(Contains(lines[2], "1.0"));
  EXPECT_TRUE(Contains(lines[2], "8.0x"));
  EXPECT_TRUE(Contains(lines[2], "87.50"));
  EXPECT_TRUE(Contains(lines[2], "-2.50"));
  EXPECT_TRUE(Contains(lines[2], "4,4,2"));
  EXPECT_FALSE(Contains(lines[2], "a:"));
  EXPECT_TRUE(Contains(lines[3], "front-2"));
  EXPECT_TRUE(Contains(lines[3], "4.0x"));
  EXPECT_TRUE(Contains(lines[3], "-0.75"));
  EXPECT_TRUE(Contains(lines[4], "float"));
  EXPECT_TRUE(Contains(lines[4], "90.00"));
  // Aligned: every column boundary at the same offset.
  const size_t col = lines[0].find("size KB") + std::string("size KB").size();
  for (size_t i = 2; i < lines.size(); ++i) {
    EXPECT_NE(lines[i][col - 1], ' ') << lines[i];
    EXPECT_EQ(lines[i][col], ' ') << lines[i];
  }
}

TEST(FormatFrontTableTest, MixedActivationBitsAndNoLabels) {
  std::vector<TableRow> rows = {{"", 1024, 80, {4, 8}, {8, 0}},
                                {"", 512, -1, {2, 2}, {8, 8}}};
  const std::string t = FormatFrontTable(rows, 90, 4096);
  SCOPED_TRACE(t);
  EXPECT_TRUE(Contains(t, "4,8 a:8,0"));
  EXPECT_TRUE(Contains(t, "2,2 a:8,8"));
  EXPECT_FALSE(Contains(t, "label"));
  EXPECT_TRUE(Contains(t, "-10.00"));
}

TEST(ReportFilesTest, JsonRoundTrips) {
  TempDir tmp;
  FrontReport r = BaseReport();
  r.front = {Point("front-1", false, {8, 4, 2, 4}, 400, 86)};
  r.front[0].torchscript_file = "front/front-1/model.pt";
  const std::string path = tmp.File("front.json");
  ASSERT_TRUE(WriteFrontJson(r, path).ok());
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  const std::string text = ReadFile(path);
  EXPECT_TRUE(Contains(text, "\n  \""));  // pretty-printed
  const nlohmann::json j = nlohmann::json::parse(text);
  EXPECT_EQ(j["job_name"], r.job_name);
  EXPECT_EQ(j["layer_names"].get<std::vector<std::string>>(), r.layer_names);
  EXPECT_DOUBLE_EQ(j["float"]["test_top1"].get<double>(), 90);
  EXPECT_DOUBLE_EQ(j["float"]["val_top1"].get<double>(), 90.5);
  EXPECT_EQ(j["float"]["size_bytes"].get<int64_t>(), 4000);
  ASSERT_EQ(j["front"].size(), 1u);
  ASSERT_EQ(j["uniform"].size(), 3u);
  const auto& p = j["front"][0];
  EXPECT_EQ(p["label"], "front-1");
  EXPECT_EQ(p["kind"], "front");
  EXPECT_EQ(p["uniform"], false);
  EXPECT_EQ(p["wbits"].get<std::vector<int>>(), (std::vector<int>{8, 4, 2, 4}));
  EXPECT_EQ(p["abits"].get<std::vector<int>>(), (std::vector<int>{8, 8, 8, 8}));
  EXPECT_EQ(p["size_bytes"].get<int64_t>(), 400);
  EXPECT_EQ(p["bops"].get<int64_t>(), 40000);
  EXPECT_DOUBLE_EQ(p["compression"].get<double>(), 10);
  EXPECT_DOUBLE_EQ(p["search_val_top1"].get<double>(), 85);
  EXPECT_DOUBLE_EQ(p["val_top1"].get<double>(), 86.5);
  EXPECT_DOUBLE_EQ(p["test_top1"].get<double>(), 86);
  EXPECT_EQ(p["torchscript_file"], "front/front-1/model.pt");
  EXPECT_EQ(p["packed_file"], "");
  EXPECT_EQ(j["uniform"][1]["kind"], "uniform");
  EXPECT_EQ(j["uniform"][1]["label"], "uniform-4");
  const FrontComparison c = CompareWithUniform(r);
  EXPECT_DOUBLE_EQ(j["comparison"]["front_hypervolume"].get<double>(),
                   c.front_hypervolume);
  EXPECT_DOUBLE_EQ(j["comparison"]["uniform_hypervolume"].get<double>(),
                   c.uniform_hypervolume);
  EXPECT_EQ(j["comparison"]["beating_points"].get<std::vector<std::string>>(),
            c.beating_points);
  EXPECT_EQ(j["comparison"]["beats_uniform"].get<bool>(), c.beats_uniform());
  EXPECT_DOUBLE_EQ(
      j["comparison"]["region"]["front_hypervolume"].get<double>(),
      c.region_front_hypervolume);
  EXPECT_EQ(j["comparison"]["region"]["size_bytes"].get<int64_t>(),
            c.region_size_bytes);
  EXPECT_EQ(j["comparison"]["smallest_within_0_5pp_of_float"]
             ["front_size_bytes"]
                 .get<int64_t>(),
            c.front_smallest_near_float);
}

TEST(ReportFilesTest, CsvHasHeaderAndOneLinePerPoint) {
  TempDir tmp;
  FrontReport r = BaseReport();
  r.front = {Point("front-1", false, {8, 4, 2, 4}, 400, 86),
             Point("front,2", false, {8, 4, 4, 4}, 450, 86.5)};
  const std::string path = tmp.File("front.csv");
  ASSERT_TRUE(WriteFrontCsv(r, path).ok());
  const std::string text = ReadFile(path);
  const std::vector<std::string> lines =
      absl::StrSplit(text, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 1u + 2 + 3);
  EXPECT_EQ(lines[0].rfind("kind,label,size_bytes,", 0), 0u) << lines[0];
  const size_t columns = std::count(lines[0].begin(), lines[0].end(), ',');
  EXPECT_EQ(std::count(lines[1].begin(), lines[1].end(), ','), columns);
  EXPECT_TRUE(Contains(lines[1], "front,front-1,400,"));
  EXPECT_TRUE(Contains(lines[1], ",8 4 2 4,8 8 8 8,"));
  EXPECT_TRUE(Contains(lines[2], "front,\"front,2\",450,"));
  EXPECT_EQ(lines[3].rfind("uniform,uniform-2,250,", 0), 0u) << lines[3];
}

TEST(ReportFilesTest, SvgIsSelfContainedAndEscaped) {
  TempDir tmp;
  FrontReport r = BaseReport();
  r.front = {Point("front-1", false, {8, 4, 2, 4}, 400, 86),
             Point("front-2", false, {8, 8, 4, 8}, 800, 89.8)};
  const std::string path = tmp.File("front.svg");
  ASSERT_TRUE(WriteFrontSvg(r, path).ok());
  std::string svg = ReadFile(path);
  while (!svg.empty() && std::isspace(static_cast<unsigned char>(svg.back()))) {
    svg.pop_back();
  }
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_EQ(svg.substr(svg.size() - 6), "</svg>");
  for (const char* label :
       {"front-1", "front-2", "uniform-2", "uniform-4", "uniform-8", "2b", "4b",
        "8b", "layer1.0.conv", "fc"}) {
    EXPECT_TRUE(Contains(svg, label)) << label;
  }
  EXPECT_TRUE(Contains(svg, "mnv2 &lt;fashion&gt; &amp; co"));
  EXPECT_FALSE(Contains(svg, "<fashion>"));
  EXPECT_TRUE(Contains(svg, "stroke-dasharray"));  // the float line
  // The collapsed 2-bit model is pinned below the axis with its value.
  EXPECT_TRUE(Contains(svg, "2b (60.0 %)"));
  // Balanced elements: every opened text/title is closed.
  auto count = [&](const std::string& needle) {
    size_t n = 0;
    for (size_t at = svg.find(needle); at != std::string::npos;
         at = svg.find(needle, at + 1)) {
      ++n;
    }
    return n;
  };
  EXPECT_EQ(count("<text"), count("</text>"));
  EXPECT_EQ(count("<title>"), count("</title>"));
}

// The post-training baselines appear in every file beside the front and
// uniform points, and stay out of the comparison.
TEST(ReportFilesTest, BaselinesInEveryFileButNotInTheComparison) {
  FrontReport r = BaseReport();
  r.front = {Point("front-1", false, {8, 4, 2, 4}, 400, 86)};
  const FrontComparison before = CompareWithUniform(r);
  FrontPoint half;
  half.label = "float16";
  half.size_bytes = 2000;
  half.val_top1 = 90.4;
  half.test_top1 = 89.95;
  FrontPoint ptq = Point("int8-ptq-per-channel", false, {8, 8, 8, 8}, 1000, 88);
  ptq.search_val_top1 = -1;
  r.baselines = {half, ptq};
  const FrontComparison after = CompareWithUniform(r);
  EXPECT_EQ(after.beating_points, before.beating_points);
  EXPECT_DOUBLE_EQ(after.region_front_hypervolume,
                   before.region_front_hypervolume);
  EXPECT_EQ(after.region_size_bytes, before.region_size_bytes);

  const nlohmann::json j = nlohmann::json::parse(RenderFrontJson(r));
  ASSERT_EQ(j["baselines"].size(), 2u);
  EXPECT_EQ(j["baselines"][0]["label"], "float16");
  EXPECT_EQ(j["baselines"][0]["kind"], "baseline");
  EXPECT_EQ(j["baselines"][0]["size_bytes"].get<int64_t>(), 2000);
  EXPECT_DOUBLE_EQ(j["baselines"][0]["compression"].get<double>(), 2);
  EXPECT_DOUBLE_EQ(j["baselines"][1]["test_top1"].get<double>(), 88);
  EXPECT_EQ(j["baselines"][1]["wbits"].get<std::vector<int>>(),
            (std::vector<int>{8, 8, 8, 8}));

  const std::vector<std::string> lines =
      absl::StrSplit(RenderFrontCsv(r), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 1u + 1 + 3 + 2 + 1);  // + a float32 row
  const size_t columns = std::count(lines[0].begin(), lines[0].end(), ',');
  for (const std::string& line : lines) {
    EXPECT_EQ(std::count(line.begin(), line.end(), ','), columns) << line;
  }
  EXPECT_EQ(lines[5].rfind("baseline,float16,2000,2.0000,", 0), 0u) << lines[5];
  EXPECT_TRUE(Contains(lines[6], "baseline,int8-ptq-per-channel,1000,"));
  EXPECT_EQ(lines[7].rfind("float,float32,4000,1.0000,", 0), 0u) << lines[7];
  EXPECT_TRUE(Contains(lines[7], ",90.0000,"));

  const std::string svg = RenderFrontSvg(r);
  EXPECT_TRUE(Contains(svg, ">float16<"));
  EXPECT_TRUE(Contains(svg, ">int8-ptq-per-channel<"));
  EXPECT_TRUE(Contains(svg, "post-training, no fine-tune"));

  // In the text table a float16 row has no bits and does not break the
  // shared activation header.
  const std::string t = FormatFrontTable(
      {{"front-1", 400, 86, {8, 4, 2, 4}, {8, 8, 8, 8}},
       {"float16", 2000, 89.95, {}, {}}},
      90, 4000);
  SCOPED_TRACE(t);
  EXPECT_TRUE(Contains(t, "a 8)"));
  EXPECT_TRUE(Contains(t, "float16"));
  EXPECT_TRUE(Contains(t, "2.0x"));
}

TEST(ReportFilesTest, SvgCopesWithWideRangesAndEmptyReports) {
  TempDir tmp;
  FrontReport r = BaseReport();
  r.uniform.push_back(Uniform(16, 40000, 90.1));  // > 10x range: log axis
  r.front = {Point("front-1", false, {8, 4, 2, 4}, 400, 86)};
  ASSERT_TRUE(WriteFrontSvg(r, tmp.File("wide.svg")).ok());
  EXPECT_TRUE(Contains(ReadFile(tmp.File("wide.svg")), "log scale"));
  ASSERT_TRUE(WriteFrontSvg(FrontReport{}, tmp.File("empty.svg")).ok());
  const std::string empty = ReadFile(tmp.File("empty.svg"));
  EXPECT_EQ(empty.rfind("<svg", 0), 0u);
  EXPECT_EQ(empty.find("nan"), std::string::npos);
  EXPECT_EQ(empty.find("inf"), std::string::npos);
}

TEST(ReportFilesTest, UnwritablePathsNameThePath) {
  TempDir tmp;
  const FrontReport r = BaseReport();
  const std::string missing = tmp.File("no/such/folder/front.json");
  for (const absl::Status& s :
       {WriteFrontJson(r, missing), WriteFrontCsv(r, missing),
        WriteFrontSvg(r, missing)}) {
    EXPECT_FALSE(s.ok());
    EXPECT_TRUE(Contains(std::string(s.message()), missing)) << s;
  }
  // A folder where the file should be: the rename fails.
  const std::string dir = tmp.File("taken");
  fs::create_directories(dir + "/child");
  const absl::Status s = WriteFrontCsv(r, dir);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(Contains(std::string(s.message()), dir)) << s;
  EXPECT_FALSE(fs::exists(dir + ".tmp"));
}

TEST(ReportFilesTest, ReplacesAnExistingFile) {
  TempDir tmp;
  const std::string path = tmp.File("front.csv");
  std::ofstream(path) << "old";
  ASSERT_TRUE(WriteFrontCsv(BaseReport(), path).ok());
  EXPECT_EQ(ReadFile(path).rfind("kind,", 0), 0u);
}

}  // namespace
}  // namespace autoq::search
