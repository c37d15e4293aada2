// Writes the seed inputs of the fuzz targets that read binary formats into
// ROOT/TARGET/: small JPEG and PNG files in every channel layout the
// decoder handles (fuzz_image_decode), IDX pairs raw and gzipped
// (fuzz_idx_reader) and CIFAR-10 batches (fuzz_cifar_reader). Nothing
// binary is checked in.
//   fuzz_make_seeds ROOT
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "evaluator/test_images.h"

namespace {

bool Write(const std::string& path, const std::string& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return false;
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  return std::fclose(f) == 0 && ok;
}

void BigEndian32(uint32_t v, std::string* out) {
  for (int shift : {24, 16, 8, 0}) out->push_back(static_cast<char>(v >> shift));
}

// A gzip member of `bytes` (what gzread unpacks).
std::string Gzip(const std::string& bytes) {
  z_stream z{};
  deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
               Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, bytes.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  z.avail_in = static_cast<uInt>(bytes.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// fuzz_idx_reader's input: two bytes giving where the images file ends,
// then the images file and the labels file.
std::string IdxPair(const std::string& images, const std::string& labels) {
  std::string out;
  out.push_back(static_cast<char>(images.size() >> 8));
  out.push_back(static_cast<char>(images.size()));
  return out + images + labels;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_seeds ROOT\n");
    return 2;
  }
  namespace ti = autoq::evaluator::test_images;
  const std::string root = argv[1];
  for (const char* t : {"fuzz_image_decode", "fuzz_idx_reader",
                        "fuzz_cifar_reader"}) {
    std::filesystem::create_directories(root + "/" + t);
  }
  const std::string images_dir = root + "/fuzz_image_decode";
  for (int channels : {1, 3, 4}) {
    const int h = 9, w = 13;
    std::vector<uint8_t> p(static_cast<size_t>(h * w * channels));
    for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<uint8_t>(i * 37);
    const std::string base = images_dir + "/seed" + std::to_string(channels);
    if (!ti::WritePng(base + ".png", p.data(), h, w, channels)) return 1;
    if (channels != 4 &&
        !Write(base + ".jpg", ti::EncodeJpeg(p.data(), h, w, channels, 80))) {
      return 1;
    }
  }

  // 3 images of 4 x 5 and their labels.
  std::string images, labels;
  BigEndian32(0x803, &images);
  for (uint32_t d : {3u, 4u, 5u}) BigEndian32(d, &images);
  for (int i = 0; i < 3 * 4 * 5; ++i) images.push_back(static_cast<char>(i * 7));
  BigEndian32(0x801, &labels);
  BigEndian32(3, &labels);
  for (char l : {0, 9, 4}) labels.push_back(l);
  const std::string idx = root + "/fuzz_idx_reader/";
  if (!Write(idx + "raw", IdxPair(images, labels)) ||
      !Write(idx + "gzipped", IdxPair(Gzip(images), Gzip(labels)))) {
    return 1;
  }

  // Two CIFAR-10 records (label byte + 3 x 32 x 32 pixels).
  std::string cifar;
  for (char label : {3, 7}) {
    cifar.push_back(label);
    for (int i = 0; i < 3 * 32 * 32; ++i) cifar.push_back(static_cast<char>(i));
  }
  const std::string c = root + "/fuzz_cifar_reader/";
  if (!Write(c + "raw", cifar) || !Write(c + "gzipped", Gzip(cifar))) return 1;
  return 0;
}
