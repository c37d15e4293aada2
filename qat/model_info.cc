#include "qat/model_info.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace autoq::qat {

std::string LayerKindName(LayerKind k) {
  switch (k) {
    case LayerKind::kConv:
      return "conv";
    case LayerKind::kDepthwise:
      return "depthwise";
    case LayerKind::kPointwise:
      return "pointwise";
    case LayerKind::kLinear:
      return "linear";
  }
  return "?";
}

int ModelAnalysis::num_genes() const {
  int n = 0;
  for (const LayerInfo& l : layers) n += l.masked ? 0 : 1;
  return n;
}

std::vector<const LayerInfo*> ModelAnalysis::genes() const {
  std::vector<const LayerInfo*> out;
  for (const LayerInfo& l : layers) {
    if (!l.masked) out.push_back(&l);
  }
  return out;
}

absl::StatusOr<std::vector<int64_t>> ParseShape(absl::string_view s) {
  std::vector<int64_t> shape;
  for (absl::string_view tok : absl::StrSplit(s, ',')) {
    int64_t d = 0;
    if (!absl::SimpleAtoi(tok, &d) || d <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad input shape '", s,
                       "': expected positive integers like 1,28,28"));
    }
    shape.push_back(d);
  }
  return shape;
}

}  // namespace autoq::qat
