// A small command-line parser for `autoq` subcommands: --name value,
// --name=value and boolean --name; unknown flags are errors.
#ifndef AUTOQ_COMMON_FLAGS_H_
#define AUTOQ_COMMON_FLAGS_H_

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace autoq {

struct FlagSpec {
  std::set<std::string> with_value;  // names without "--"
  std::set<std::string> boolean;
};

class Flags {
 public:
  // Parses argv[first..argc).
  static absl::StatusOr<Flags> Parse(int argc, char** argv, int first,
                                     const FlagSpec& spec);

  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  std::string Get(const std::string& name, const std::string& def = "") const;
  absl::StatusOr<int64_t> GetInt(const std::string& name, int64_t def) const;
  // GetInt within [min, max]: InvalidArgument "--NAME must be in [MIN,
  // MAX]" outside it.
  absl::StatusOr<int> GetIntIn(const std::string& name, int def, int min,
                               int max) const;
  absl::StatusOr<double> GetDouble(const std::string& name, double def) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

}  // namespace autoq

#endif  // AUTOQ_COMMON_FLAGS_H_
