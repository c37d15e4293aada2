#include "qat/quant_config.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace autoq::qat {

absl::StatusOr<Granularity> ParseGranularity(absl::string_view s) {
  if (s == "per-tensor") return Granularity::kPerTensorAffine;
  if (s == "per-channel") return Granularity::kPerChannelSymmetric;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown scheme '", s, "' (expected per-tensor or per-channel)"));
}

absl::StatusOr<RangeMethod> ParseRangeMethod(absl::string_view s) {
  if (s == "minmax") return RangeMethod::kMinMax;
  if (s == "mse") return RangeMethod::kMse;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown range method '", s, "' (expected minmax or mse)"));
}

absl::StatusOr<BnFold> ParseBnFold(absl::string_view s) {
  if (s == "none") return BnFold::kNone;
  if (s == "approx" || s == "approximate") return BnFold::kApproximate;
  if (s == "exact") return BnFold::kExact;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown BN fold '", s, "' (expected none, approx or exact)"));
}

std::string GranularityName(Granularity g) {
  return g == Granularity::kPerTensorAffine ? "per-tensor" : "per-channel";
}
std::string RangeMethodName(RangeMethod r) {
  return r == RangeMethod::kMinMax ? "minmax" : "mse";
}
std::string BnFoldName(BnFold f) {
  switch (f) {
    case BnFold::kNone:
      return "none";
    case BnFold::kApproximate:
      return "approx";
    case BnFold::kExact:
      return "exact";
  }
  return "?";
}

absl::StatusOr<std::vector<int>> ParseBitList(absl::string_view s,
                                              size_t num_layers,
                                              bool allow_float) {
  std::vector<int> bits;
  for (absl::string_view tok : absl::StrSplit(s, ',')) {
    tok = absl::StripAsciiWhitespace(tok);
    int b = 0;
    if (allow_float && (tok == "f" || tok == "float")) {
      b = 0;
    } else if (!absl::SimpleAtoi(tok, &b)) {
      return absl::InvalidArgumentError(
          absl::StrCat("bit list '", s, "': '", tok, "' is not a number"));
    }
    if (!(allow_float && b == 0) && (b < kMinBits || b > kMaxBits)) {
      return absl::InvalidArgumentError(
          absl::StrCat("bit list '", s, "': ", b, " at position ",
                       bits.size() + 1, " is outside ", kMinBits, "..",
                       kMaxBits, allow_float ? " (or 0/f for float)" : ""));
    }
    bits.push_back(b);
  }
  if (bits.size() == 1 && num_layers > 1) bits.assign(num_layers, bits[0]);
  if (bits.size() != num_layers) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bit list has ", bits.size(), " entries but the model has ", num_layers,
        " quantizable layers"));
  }
  return bits;
}

std::string FormatBitList(const std::vector<int>& bits) {
  return absl::StrJoin(bits, ",", [](std::string* out, int b) {
    absl::StrAppend(out, b == 0 ? std::string("f") : absl::StrCat(b));
  });
}

std::string FormatBits(const std::vector<LayerBits>& bits) {
  std::vector<int> w, a;
  for (const LayerBits& b : bits) {
    w.push_back(b.wbits);
    a.push_back(b.abits);
  }
  std::string out = FormatBitList(w);
  const bool same_a =
      std::all_of(a.begin(), a.end(), [&](int v) { return v == a.front(); });
  if (!same_a) absl::StrAppend(&out, " a:", FormatBitList(a));
  return out;
}

}  // namespace autoq::qat
