#include "evaluator/job_config.h"

#include <google/protobuf/util/json_util.h>

#include <cctype>
#include <cmath>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/file_util.h"
#include "common/status_macros.h"
#include "proto/autoq.pb.h"
#include "qat/model_info.h"

namespace autoq::evaluator {
namespace {

absl::Status Bad(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

// Applies a RecipeSpec's present fields over `r` and validates the result,
// naming fields as `prefix`.field.
absl::Status ApplyRecipe(const RecipeSpec& s, absl::string_view prefix,
                         qat::QatRecipe* r, int64_t* train_subset) {
  if (s.has_epochs()) r->epochs = s.epochs();
  if (s.has_batch_size()) r->batch_size = s.batch_size();
  if (!s.optimizer().empty()) r->optimizer = s.optimizer();
  if (s.has_lr()) r->lr = s.lr();
  if (s.has_momentum()) r->momentum = s.momentum();
  if (s.has_weight_decay()) r->weight_decay = s.weight_decay();
  if (!s.lr_schedule().empty()) r->lr_schedule = s.lr_schedule();
  if (s.has_act_quant_delay()) r->act_quant_delay = s.act_quant_delay();
  if (s.has_bn_freeze_epoch()) r->bn_freeze_epoch = s.bn_freeze_epoch();
  if (s.has_hflip()) r->hflip = s.hflip();
  if (s.has_crop_pad()) r->crop_pad = s.crop_pad();
  if (s.has_random_resized_crop()) {
    r->random_resized_crop = s.random_resized_crop();
  }
  if (s.has_seed()) r->seed = s.seed();
  if (s.has_train_subset()) *train_subset = s.train_subset();
  if (*train_subset < 0) {
    return Bad(absl::StrCat(prefix, ".train_subset"), "must be >= 0");
  }
  absl::Status st = qat::ValidateRecipe(*r);
  if (!st.ok()) {
    // ValidateRecipe says "recipe.<field>: ..."; name the config's path.
    std::string msg(st.message());
    if (msg.rfind("recipe.", 0) == 0) msg = msg.substr(7);
    return absl::InvalidArgumentError(absl::StrCat(prefix, ".", msg));
  }
  return absl::OkStatus();
}

absl::Status CheckBits(absl::string_view field, int bits, bool allow_float) {
  if (allow_float && bits == 0) return absl::OkStatus();
  if (bits < qat::kMinBits || bits > qat::kMaxBits) {
    return Bad(field, absl::StrCat(bits, " is outside ", qat::kMinBits, "..",
                                   qat::kMaxBits,
                                   allow_float ? " (or 0 for float)" : ""));
  }
  return absl::OkStatus();
}

absl::Status ResolveSearch(const SearchSpec& s, JobConfig* c) {
  SearchOptions& o = c->search;
  if (s.has_population()) o.population = s.population();
  if (s.has_generations()) o.generations = s.generations();
  if (s.has_crossover()) o.crossover = s.crossover();
  if (s.has_mutation()) o.mutation = s.mutation();
  if (s.has_eta_c()) o.eta_c = s.eta_c();
  if (s.has_eta_m()) o.eta_m = s.eta_m();
  if (s.has_seed()) o.seed = s.seed();
  if (s.has_min_bits()) o.min_bits = s.min_bits();
  if (s.has_max_bits()) o.max_bits = s.max_bits();
  if (s.has_search_activation_bits()) {
    o.search_activation_bits = s.search_activation_bits();
  }
  if (s.has_activation_bits()) o.activation_bits = s.activation_bits();
  if (s.has_pin_first_last()) o.pin_first_last = s.pin_first_last();
  if (s.has_bops_objective()) o.bops_objective = s.bops_objective();

  if (o.population < 8) {
    return Bad("search.population",
               absl::StrCat(o.population,
                            " is too small: NSGA-II needs at least 8 "
                            "individuals (a multiple of 4)"));
  }
  if (o.population % 4 != 0) {
    const int rounded = (o.population + 3) / 4 * 4;
    c->warnings.push_back(absl::StrCat("search.population ", o.population,
                                       " rounded up to ", rounded,
                                       " (NSGA-II needs a multiple of 4)"));
    o.population = rounded;
  }
  if (o.population > 4096) return Bad("search.population", "must be <= 4096");
  if (o.generations < 0) return Bad("search.generations", "must be >= 0");
  if (!(o.crossover >= 0 && o.crossover < 1)) {
    return Bad("search.crossover", "must be in [0, 1)");
  }
  if (s.has_mutation() && !(o.mutation >= 0 && o.mutation <= 1)) {
    return Bad("search.mutation", "must be in [0, 1]");
  }
  if (!(o.eta_c >= 1 && o.eta_c < 100)) {
    return Bad("search.eta_c", "must be in [1, 100)");
  }
  if (!(o.eta_m >= 1 && o.eta_m < 100)) {
    return Bad("search.eta_m", "must be in [1, 100)");
  }
  RETURN_IF_ERROR(CheckBits("search.min_bits", o.min_bits, false));
  RETURN_IF_ERROR(CheckBits("search.max_bits", o.max_bits, false));
  if (o.min_bits > o.max_bits) {
    return Bad("search.min_bits",
               absl::StrCat(o.min_bits, " is above max_bits ", o.max_bits));
  }
  RETURN_IF_ERROR(CheckBits("search.activation_bits", o.activation_bits, true));
  if (s.has_size_budget_kb()) {
    if (!(s.size_budget_kb() >= 0) || !std::isfinite(s.size_budget_kb())) {
      return Bad("search.size_budget_kb", "must be >= 0");
    }
    o.size_budget_bytes = static_cast<int64_t>(s.size_budget_kb() * 1024.0);
  }
  if (s.has_max_accuracy_drop()) {
    if (!(s.max_accuracy_drop() > 0 && s.max_accuracy_drop() <= 100)) {
      return Bad("search.max_accuracy_drop",
                 "must be in (0, 100] percentage points");
    }
    o.max_accuracy_drop = s.max_accuracy_drop();
  }
  if (s.has_sensitivity_images()) {
    if (s.sensitivity_images() < 0 || s.sensitivity_images() > 1000000) {
      return Bad("search.sensitivity_images",
                 "must be in 0..1000000 (0: no sensitivity seeding)");
    }
    o.sensitivity_images = s.sensitivity_images();
  }
  if (!s.strategy().empty()) {
    if (s.strategy() == "guided") {
      o.strategy = SearchOptions::Strategy::kGuided;
    } else if (s.strategy() == "nsga2") {
      o.strategy = SearchOptions::Strategy::kNsga2;
    } else if (s.strategy() == "knapsack") {
      o.strategy = SearchOptions::Strategy::kKnapsack;
    } else {
      return Bad("search.strategy",
                 absl::StrCat("\"", s.strategy(),
                              "\" is not one of guided, nsga2, knapsack"));
    }
  }
  if (o.strategy == SearchOptions::Strategy::kKnapsack &&
      (o.sensitivity_images <= 0 || o.max_bits - o.min_bits < 2)) {
    return Bad("search.strategy",
               "knapsack needs search.sensitivity_images > 0 and at least 3 "
               "bit-widths");
  }
  if (s.has_screening()) {
    if (s.screening() < 1 || s.screening() > 1000) {
      return Bad("search.screening", "must be in 1..1000 (1: no screening)");
    }
    o.screening = s.screening();
  }
  if (s.has_score_noise()) {
    if (!(s.score_noise() >= 0 && s.score_noise() <= 10)) {
      return Bad("search.score_noise", "must be in [0, 10] percentage points");
    }
    o.score_noise = s.score_noise();
  }
  qat::QatRecipe search_defaults;  // one short epoch per candidate
  search_defaults.epochs = 1;
  c->search_recipe = search_defaults;
  return ApplyRecipe(s.qat(), "search.qat", &c->search_recipe,
                     &c->search_train_subset);
}

absl::Status ResolveFinal(const FinalSpec& s, JobConfig* c) {
  FinalOptions& f = c->final_front;
  // Longer than a candidate's: activations quantized after one epoch, BN
  // frozen for the last one.
  f.recipe.epochs = 3;
  f.recipe.act_quant_delay = 1;
  f.recipe.bn_freeze_epoch = 2;
  f.bn_fold = c->scheme.bn_fold;
  RETURN_IF_ERROR(ApplyRecipe(s.recipe(), "final_front.recipe", &f.recipe,
                              &f.train_subset));
  if (f.recipe.epochs < 1) {
    return Bad("final_front.recipe.epochs", "must be >= 1");
  }
  if (!s.bn_fold().empty()) {
    absl::StatusOr<qat::BnFold> fold = qat::ParseBnFold(s.bn_fold());
    if (!fold.ok()) return Bad("final_front.bn_fold", fold.status().message());
    f.bn_fold = *fold;
  }
  if (s.has_compare_uniform()) f.compare_uniform = s.compare_uniform();
  if (s.has_ptq_baselines()) f.ptq_baselines = s.ptq_baselines();
  if (s.has_ptq_calibration_images()) {
    f.ptq_calibration_images = s.ptq_calibration_images();
    if (f.ptq_calibration_images < 1 ||
        f.ptq_calibration_images > 1000000) {
      return Bad("final_front.ptq_calibration_images",
                 "must be in 1..1000000");
    }
  }
  return absl::OkStatus();
}

absl::Status ResolveScheme(const SchemeSpec& s, qat::QuantScheme* scheme) {
  if (!s.granularity().empty()) {
    absl::StatusOr<qat::Granularity> g = qat::ParseGranularity(s.granularity());
    if (!g.ok()) return Bad("scheme.granularity", g.status().message());
    scheme->granularity = *g;
  }
  if (!s.range().empty()) {
    absl::StatusOr<qat::RangeMethod> r = qat::ParseRangeMethod(s.range());
    if (!r.ok()) return Bad("scheme.range", r.status().message());
    scheme->range = *r;
  }
  if (!s.bn_fold().empty()) {
    absl::StatusOr<qat::BnFold> f = qat::ParseBnFold(s.bn_fold());
    if (!f.ok()) return Bad("scheme.bn_fold", f.status().message());
    scheme->bn_fold = *f;
  }
  return absl::OkStatus();
}

bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > 64 || name[0] == '.') return false;
  for (char ch : name) {
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' ||
          ch == '_' || ch == '.')) {
      return false;
    }
  }
  return true;
}

}  // namespace

const char* StrategyName(SearchOptions::Strategy s) {
  switch (s) {
    case SearchOptions::Strategy::kGuided:
      return "guided";
    case SearchOptions::Strategy::kNsga2:
      return "nsga2";
    case SearchOptions::Strategy::kKnapsack:
      return "knapsack";
  }
  return "guided";
}

absl::StatusOr<JobConfig> ParseJobConfig(absl::string_view json) {
  JobSpec spec;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto parsed = google::protobuf::util::JsonStringToMessage(std::string(json),
                                                            &spec, options);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid job spec: ", parsed.message().as_string()));
  }
  JobConfig c;
  google::protobuf::util::JsonPrintOptions print;
  print.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(spec, &c.spec_json, print);

  c.name = spec.name().empty() ? "job" : spec.name();
  if (!ValidName(c.name)) {
    return Bad("name", absl::StrCat("'", c.name,
                                    "' (letters, digits, '-', '_', '.'; at "
                                    "most 64; not starting with '.')"));
  }
  c.model_path = spec.model().path();
  if (c.model_path.empty()) return Bad("model.path", "is required");
  c.builtin = spec.model().builtin();
  if (!c.builtin.empty() && c.builtin != "fashion-mnist") {
    return Bad("model.builtin",
               absl::StrCat("'", c.builtin, "' (expected fashion-mnist)"));
  }
  if (!spec.model().input_shape().empty()) {
    absl::StatusOr<std::vector<int64_t>> shape =
        qat::ParseShape(spec.model().input_shape());
    if (!shape.ok()) return Bad("model.input_shape", shape.status().message());
    c.input_shape = *shape;
  }

  const DatasetSpec& d = spec.dataset();
  c.data_spec = d.spec().empty() ? "fashion-mnist" : d.spec();
  if (d.has_val_size()) c.val_size = d.val_size();
  if (d.has_val_subset()) c.val_subset = d.val_subset();
  if (d.has_test_subset()) c.test_subset = d.test_subset();
  if (d.has_seed()) c.split_seed = d.seed();
  if (c.val_size < 1) return Bad("dataset.val_size", "must be >= 1");
  if (c.val_subset < 0) return Bad("dataset.val_subset", "must be >= 0");
  if (c.test_subset < 0) return Bad("dataset.test_subset", "must be >= 0");

  RETURN_IF_ERROR(ResolveScheme(spec.scheme(), &c.scheme));
  RETURN_IF_ERROR(ResolveSearch(spec.search(), &c));
  RETURN_IF_ERROR(ResolveFinal(spec.final_front(), &c));

  for (const std::string& dev : spec.workers().devices()) {
    if (dev != "cpu" && dev.rfind("cuda", 0) != 0) {
      return Bad("workers.devices",
                 absl::StrCat("'", dev, "' (expected cpu or cuda:N)"));
    }
    c.devices.push_back(dev);
  }
  if (c.devices.empty()) c.devices.push_back("cpu");
  if (c.devices.size() > 64) return Bad("workers.devices", "at most 64");
  if (spec.workers().has_threads()) {
    c.threads = spec.workers().threads();
    if (c.threads < 1 || c.threads > 1024) {
      return Bad("workers.threads", "must be in 1..1024");
    }
  }
  c.output_dir = spec.output().dir().empty() ? absl::StrCat("runs/", c.name)
                                             : spec.output().dir();
  c.database = spec.output().database().empty()
                   ? absl::StrCat(c.output_dir, "/autoq.db")
                   : spec.output().database();
  return c;
}

absl::StatusOr<JobConfig> JobConfigFromSpec(const autoq::JobSpec& spec) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  const auto printed =
      google::protobuf::util::MessageToJsonString(spec, &json, options);
  if (!printed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the job spec cannot be read: ", printed.message().as_string()));
  }
  return ParseJobConfig(json);
}

absl::StatusOr<JobConfig> LoadJobConfig(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  absl::StatusOr<JobConfig> c = ParseJobConfig(text);
  if (!c.ok()) {
    return absl::Status(c.status().code(),
                        absl::StrCat(path, ": ", c.status().message()));
  }
  return c;
}

}  // namespace autoq::evaluator
