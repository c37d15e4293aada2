// Writes the seed inputs of the fuzz targets that read protobuf messages
// into ROOT/TARGET/: SubmitJob streams of the shipped job configs
// (fuzz_submit_stream) and completions of every stage (fuzz_completion).
//   fuzz_make_proto_seeds ROOT CONFIG.json...
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/json_util.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "evaluator/task.h"
#include "proto/autoq.pb.h"

namespace {

bool Write(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  return static_cast<bool>(out);
}

// Length-delimited messages, as fuzz_submit_stream reads them.
std::string Delimited(const autoq::SubmitJobRequest& a,
                      const autoq::SubmitJobRequest& b) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream raw(&out);
    google::protobuf::io::CodedOutputStream coded(&raw);
    for (const auto* m : {&a, &b}) {
      coded.WriteVarint32(static_cast<uint32_t>(m->ByteSizeLong()));
      m->SerializeToCodedStream(&coded);
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: fuzz_make_proto_seeds ROOT CONFIG.json...\n");
    return 2;
  }
  const std::string root = argv[1];
  const std::string submit = root + "/fuzz_submit_stream/";
  const std::string completion = root + "/fuzz_completion/";
  std::filesystem::create_directories(submit);
  std::filesystem::create_directories(completion);
  for (int i = 2; i < argc; ++i) {
    std::ifstream in(argv[i]);
    std::stringstream text;
    text << in.rdbuf();
    autoq::SubmitJobRequest spec, chunk;
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = true;
    if (!google::protobuf::util::JsonStringToMessage(
             text.str(), spec.mutable_spec(), options)
             .ok()) {
      continue;  // a config in the CLI's own form, not a JobSpec
    }
    chunk.set_model_chunk("PK\x03\x04 model bytes");
    Write(submit + std::filesystem::path(argv[i]).stem().string(),
          Delimited(spec, chunk));
  }
  // Completions: a search result, a sensitivity table, a final point.
  for (int stage : {autoq::STAGE_SEARCH, autoq::STAGE_SENSITIVITY,
                    autoq::STAGE_FINAL}) {
    autoq::CompleteTaskRequest r;
    r.set_worker_id("w-1");
    r.set_lease_id("l-1");
    r.set_task_id("7");
    autoq::EvalResult* e = r.mutable_result();
    e->set_best_val_top1(88.5);
    e->set_final_val_top1(88.1);
    e->set_test_top1(stage == autoq::STAGE_FINAL ? 87.9 : -1);
    e->set_size_bytes(12345);
    auto* epoch = e->add_curve();
    epoch->set_val_top1(88.5);
    epoch->set_lr(0.01);
    // fuzz_completion's second byte 3 asks for 3 layers at 2, 3, 4 bits.
    for (int b : {2, 3, 4}) {
      e->add_wbits(b);
      e->add_abits(8);
    }
    if (stage == autoq::STAGE_SENSITIVITY) {
      auto* s = e->mutable_sensitivity();
      s->set_min_bits(2);
      s->set_max_bits(4);
      for (int l = 0; l < 3; ++l) {
        auto* layer = s->add_layers();
        layer->set_name("conv" + std::to_string(l));
        for (int b = 2; b <= 4; ++b) {
          layer->add_loss(0.1 * b);
          layer->add_top1(80 + b);
        }
      }
    }
    if (stage == autoq::STAGE_FINAL) {
      for (const char* name : autoq::evaluator::kFinalArtifacts) {
        auto* a = r.add_artifacts();
        a->set_name(name);
        a->set_data("bytes");
      }
    }
    std::string bytes;
    bytes.push_back(static_cast<char>(stage));
    bytes.push_back(3);
    Write(completion + "stage" + std::to_string(stage),
          bytes + r.SerializeAsString());
  }
  return 0;
}
