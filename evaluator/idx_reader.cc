// IDX reader (the MNIST / Fashion-MNIST file format): a big-endian header of
// magic (0x0000 type ndim), then ndim uint32 dimensions, then the uint8 data.
#include <ATen/ATen.h>

#include <cstdint>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "evaluator/dataset.h"
#include "qat/torch_errors.h"

namespace autoq::evaluator {
namespace {

constexpr uint32_t kImagesMagic = 0x00000803;  // uint8, 3 dimensions.
constexpr uint32_t kLabelsMagic = 0x00000801;  // uint8, 1 dimension.

uint32_t BigEndian32(const std::string& bytes, size_t offset) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data()) + offset;
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) |
         (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// An IDX file's dimensions and the offset of its data, after checking the
// magic and that the payload has exactly the size the header promises.
struct IdxFile {
  std::string bytes;
  std::vector<int64_t> dims;
  size_t data_offset = 0;
};

absl::StatusOr<IdxFile> ReadIdxFile(const std::string& path,
                                    uint32_t expected_magic, const char* what) {
  IdxFile f;
  ASSIGN_OR_RETURN(f.bytes, internal::ReadFileBytes(path));
  const size_t ndim = expected_magic & 0xff;
  const size_t header = 4 + 4 * ndim;
  if (f.bytes.size() < 4) {
    return absl::DataLossError(
        absl::StrCat(path, ": truncated IDX ", what, " file: ", f.bytes.size(),
                     " bytes, expected at least ", header, " for the header"));
  }
  const uint32_t magic = BigEndian32(f.bytes, 0);
  if (magic != expected_magic) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: bad IDX magic 0x%08x, expected 0x%08x for an IDX %s file", path,
        magic, expected_magic, what));
  }
  if (f.bytes.size() < header) {
    return absl::DataLossError(
        absl::StrCat(path, ": truncated IDX ", what, " file: ", f.bytes.size(),
                     " bytes, expected at least ", header, " for the header"));
  }
  // Saturating product: three 32-bit dimensions can overflow 64 bits, and a
  // saturated value still fails the size check below.
  uint64_t payload = 1;
  for (size_t i = 0; i < ndim; ++i) {
    f.dims.push_back(BigEndian32(f.bytes, 4 + 4 * i));
    const auto d = static_cast<uint64_t>(f.dims.back());
    payload = (d != 0 && payload > (UINT64_MAX - header) / d)
                  ? UINT64_MAX - header
                  : payload * d;
  }
  const uint64_t expected = header + payload;
  if (f.bytes.size() < expected) {
    return absl::DataLossError(
        absl::StrCat(path, ": truncated IDX ", what, " file: header promises ",
                     expected, " bytes, file has ", f.bytes.size()));
  }
  if (f.bytes.size() > expected) {
    // Trailing bytes usually mean a mislabelled or concatenated file.
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": IDX ", what, " file has ", f.bytes.size(),
                     " bytes, header promises ", expected));
  }
  f.data_offset = header;
  return f;
}

absl::StatusOr<qat::TensorDataset> ReadIdxImpl(const std::string& images_path,
                                               const std::string& labels_path,
                                               int64_t num_classes) {
  if (num_classes <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("ReadIdx: num_classes must be > 0, got ", num_classes));
  }
  ASSIGN_OR_RETURN(IdxFile images,
                   ReadIdxFile(images_path, kImagesMagic, "images"));
  ASSIGN_OR_RETURN(IdxFile labels,
                   ReadIdxFile(labels_path, kLabelsMagic, "labels"));
  const int64_t n = images.dims[0];
  if (labels.dims[0] != n) {
    return absl::InvalidArgumentError(
        absl::StrCat(images_path, " has ", n, " images but ", labels_path,
                     " has ", labels.dims[0], " labels"));
  }
  if (n == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(images_path, ": IDX file holds no images"));
  }
  qat::TensorDataset out;
  const int64_t h = images.dims[1], w = images.dims[2];
  out.images = at::empty({n, 1, h, w}, at::TensorOptions().dtype(at::kByte));
  std::memcpy(out.images.data_ptr<uint8_t>(),
              images.bytes.data() + images.data_offset,
              static_cast<size_t>(n * h * w));
  images.bytes = std::string();  // Frees the raw copy early.
  out.labels = at::empty({n}, at::TensorOptions().dtype(at::kLong));
  int64_t* dst = out.labels.data_ptr<int64_t>();
  const auto* src =
      reinterpret_cast<const unsigned char*>(labels.bytes.data()) +
      labels.data_offset;
  for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
  RETURN_IF_ERROR(ValidateLabels(out.labels, num_classes, labels_path));
  out.num_classes = num_classes;
  return out;
}

}  // namespace

absl::StatusOr<qat::TensorDataset> ReadIdx(const std::string& images_path,
                                           const std::string& labels_path,
                                           int64_t num_classes) {
  try {
    return ReadIdxImpl(images_path, labels_path, num_classes);
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat(images_path, ": ", qat::SummarizeTorchError(e)));
  }
}

}  // namespace autoq::evaluator
