// Writes the seed images of fuzz_image_decode into DIR: small JPEG and PNG
// files in every channel layout the decoder handles.
//   fuzz_make_seeds DIR
#include <cstdio>
#include <string>
#include <vector>

#include "evaluator/test_images.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_seeds DIR\n");
    return 2;
  }
  namespace ti = autoq::evaluator::test_images;
  const std::string dir = argv[1];
  for (int channels : {1, 3, 4}) {
    const int h = 9, w = 13;
    std::vector<uint8_t> p(static_cast<size_t>(h * w * channels));
    for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<uint8_t>(i * 37);
    const std::string base = dir + "/seed" + std::to_string(channels);
    if (!ti::WritePng(base + ".png", p.data(), h, w, channels)) return 1;
    if (channels != 4) {
      const std::string jpeg = ti::EncodeJpeg(p.data(), h, w, channels, 80);
      std::FILE* f = std::fopen((base + ".jpg").c_str(), "wb");
      if (f == nullptr) return 1;
      std::fwrite(jpeg.data(), 1, jpeg.size(), f);
      std::fclose(f);
    }
  }
  return 0;
}
