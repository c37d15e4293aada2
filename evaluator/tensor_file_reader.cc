// Reader for tensor files written from Python with
// torch.save({'images': X, 'labels': y}, path): a zip archive holding a
// pickled dict and a record per storage, which LibTorch's unpickler reads.
#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>
#include <caffe2/serialize/read_adapter_interface.h>
#include <torch/csrc/jit/serialization/import_read.h>
#include <torch/csrc/jit/serialization/storage_context.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "common/status_macros.h"
#include "evaluator/dataset.h"
#include "evaluator/torch_save_check.h"
#include "qat/torch_errors.h"

namespace autoq::evaluator {
namespace {

// The archive's bytes for LibTorch's zip reader, which asks for offsets
// the file declares without checking them (one before the start, found by
// fuzz_tensor_file): reads outside the bytes come back short, which the
// reader reports as a damaged archive.
class BoundedReader final : public caffe2::serialize::ReadAdapterInterface {
 public:
  explicit BoundedReader(absl::string_view bytes) : bytes_(bytes) {}
  size_t size() const override { return bytes_.size(); }
  size_t read(uint64_t pos, void* buf, size_t n,
              const char* /*what*/) const override {
    if (pos >= bytes_.size()) return 0;
    n = std::min<uint64_t>(n, bytes_.size() - pos);
    std::memcpy(buf, bytes_.data() + pos, n);
    return n;
  }

 private:
  absl::string_view bytes_;
};

// Reads the archive as torch::jit::pickle_load does, except that each
// storage is its record, as long as the record: pickle_load sizes a storage
// by the element count the pickle declares, which a file can set past the
// record's end (reads beyond the buffer). The storages made from records
// go to `records`; a tensor on any other storage came from a key that no
// record matched exactly and is refused (CheckWithinStorage).
c10::IValue LoadArchive(absl::string_view bytes,
                        std::vector<c10::Storage>* records) {
  caffe2::serialize::PyTorchStreamReader reader(
      std::make_shared<BoundedReader>(bytes));
  auto storages = std::make_shared<torch::jit::DeserializationStorageContext>();
  for (const std::string& name : reader.getAllRecords()) {
    // The zip reader finds "DATA/0" for "data/0"; two such names for one
    // key make addStorage throw.
    if (!absl::StartsWithIgnoreCase(name, "data/")) continue;
    auto record = reader.getRecord(name);
    records->emplace_back(c10::Storage::use_byte_size_t(), std::get<1>(record),
                          std::move(std::get<0>(record)),
                          /*allocator=*/nullptr, /*resizable=*/false);
    storages->addStorage(name.substr(5), records->back());
  }
  return torch::jit::readArchiveAndTensors(
      "data", /*pickle_prefix=*/"", /*tensor_prefix=*/"",
      /*type_resolver=*/c10::nullopt, /*obj_loader=*/c10::nullopt,
      /*device=*/c10::nullopt, reader, torch::jit::Unpickler::defaultTypeParser,
      storages);
}

// OK when `t`'s sizes, strides and offset address only bytes of its
// storage and it holds no more elements than the storage does. A file sets
// these freely; LibTorch does not check them when it rebuilds a tensor, and
// contiguous() would then read past the storage or allocate what a stride
// of 0 declares (an expanded view: gigabytes from a one-element storage).
absl::Status CheckWithinStorage(const at::Tensor& t, const std::string& name,
                                const std::string& path,
                                const std::vector<c10::Storage>& records) {
  const auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": '", name, "' (shape ",
                     absl::StrJoin(t.sizes(), "x"), ") ", why));
  };
  if (!t.has_storage() || t.is_sparse()) return bad("is not a dense tensor");
  if (std::none_of(records.begin(), records.end(), [&](const c10::Storage& r) {
        return r.is_alias_of(t.storage());
      })) {
    return bad("is not stored in one of the file's records");
  }
  const uint64_t item = t.element_size();
  const uint64_t storage = t.storage().nbytes();
  if (t.storage_offset() < 0) return bad("has a negative storage offset");
  // last: the highest element index addressed; count: the elements. Both
  // stay below 2^63 or the view is refused (each step checks before it
  // multiplies or adds).
  const uint64_t limit = uint64_t{1} << 62;
  uint64_t last = static_cast<uint64_t>(t.storage_offset()), count = 1;
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (t.size(d) < 0 || t.stride(d) < 0) {
      return bad("has a negative size or stride");
    }
    const uint64_t size = static_cast<uint64_t>(t.size(d));
    if (size == 0) return absl::OkStatus();  // no element is addressed
    const uint64_t stride = static_cast<uint64_t>(t.stride(d));
    if (size > limit / count || (stride != 0 && size - 1 > limit / stride)) {
      return bad("addresses more than 2^62 elements");
    }
    count *= size;
    last += (size - 1) * stride;
    if (last > limit) return bad("addresses more than 2^62 elements");
  }
  if ((last + 1) > storage / item) {
    return bad(absl::StrCat("addresses element ", last, " of a storage of ",
                            storage / item, "; the file is damaged"));
  }
  if (count > storage / item) {
    return bad(absl::StrCat(
        "is a view of ", count, " elements over a storage of ", storage / item,
        " (an expanded tensor?); save it with .contiguous() or .clone()"));
  }
  return absl::OkStatus();
}

std::string KeyName(const c10::IValue& key) {
  return key.isString() ? key.toStringRef() : key.tagKind();
}

// Looks up the tensor `name` in the pickled dict.
absl::StatusOr<at::Tensor> GetTensor(
    const c10::Dict<c10::IValue, c10::IValue>& dict, const std::string& name,
    const std::string& path) {
  std::vector<std::string> keys;
  for (const auto& entry : dict) {
    if (entry.key().isString() && entry.key().toStringRef() == name) {
      if (!entry.value().isTensor()) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": '", name, "' is a ", entry.value().tagKind(),
                         ", expected a tensor"));
      }
      return entry.value().toTensor();
    }
    keys.push_back(KeyName(entry.key()));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      path, ": no '", name, "' entry (keys: ", absl::StrJoin(keys, ", "),
      "); expected torch.save({'images': X, 'labels': y})"));
}

absl::StatusOr<qat::TensorDataset> ReadTensorFileImpl(const std::string& path) {
  // gzread passes a torch.save zip through unchanged.
  ASSIGN_OR_RETURN(std::string bytes, internal::ReadFileBytes(path));
  // torch.save has written zip archives since PyTorch 1.6; the older pickle
  // stream format is not readable by pickle_load.
  if (bytes.size() < 4 || bytes[0] != 'P' || bytes[1] != 'K' ||
      bytes[2] != '\x03' || bytes[3] != '\x04') {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": not a torch.save zip file (", bytes.size(),
        " bytes, no zip signature); save with torch.save(obj, path) from "
        "PyTorch >= 1.6"));
  }
  // LibTorch allocates the sizes a file declares before reading them.
  if (absl::Status st =
          CheckTorchSaveBytes(bytes);
      !st.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a readable torch.save file: ", st.message()));
  }
  c10::IValue value;
  std::vector<c10::Storage> records;  // the file's data records
  try {
    value = LoadArchive(bytes, &records);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        path,
        ": not a readable torch.save file: ", qat::SummarizeTorchError(e)));
  }
  bytes = std::string();  // The tensors now own their own storage.
  if (!value.isGenericDict()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": holds a ", value.tagKind(),
                     ", expected a dict {'images': X, 'labels': y}"));
  }
  const auto dict = value.toGenericDict();
  ASSIGN_OR_RETURN(at::Tensor images, GetTensor(dict, "images", path));
  ASSIGN_OR_RETURN(at::Tensor labels, GetTensor(dict, "labels", path));
  RETURN_IF_ERROR(CheckWithinStorage(images, "images", path, records));
  RETURN_IF_ERROR(CheckWithinStorage(labels, "labels", path, records));

  if (images.dim() != 4) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": 'images' has rank ", images.dim(), " (shape ",
        absl::StrJoin(images.sizes(), "x"), "), expected N x C x H x W"));
  }
  if (images.scalar_type() != at::kByte && images.scalar_type() != at::kFloat) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": 'images' has dtype ", c10::toString(images.scalar_type()),
        ", expected uint8 or float32"));
  }
  if (labels.dim() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": 'labels' has rank ", labels.dim(), ", expected 1"));
  }
  if (labels.scalar_type() != at::kLong) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": 'labels' has dtype ",
                     c10::toString(labels.scalar_type()), ", expected int64"));
  }
  if (images.size(0) != labels.size(0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": ", images.size(0), " images but ", labels.size(0), " labels"));
  }
  if (labels.size(0) == 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": holds no samples"));
  }
  qat::TensorDataset out;
  // contiguous() so batches gather from one dense block even when the saved
  // tensor was a view.
  out.images = images.contiguous();
  out.labels = labels.contiguous();
  const int64_t max_label = out.labels.max().item<int64_t>();
  // max + 1 classes; ValidateLabels then reports any negative label.
  RETURN_IF_ERROR(ValidateLabels(out.labels, max_label + 1, path));
  out.num_classes = max_label + 1;
  return out;
}

}  // namespace

absl::StatusOr<qat::TensorDataset> ReadTensorFile(const std::string& path) {
  try {
    return ReadTensorFileImpl(path);
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat(path, ": ", qat::SummarizeTorchError(e)));
  }
}

}  // namespace autoq::evaluator
