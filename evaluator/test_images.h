// Writing JPEG and PNG files from interleaved 8-bit pixels, for the image
// folders that tests, benches and the README's example generate (the
// product itself only decodes: evaluator/image_decode.h). Header-only; a
// target that calls EncodeJpeg links JPEG::JPEG, one that calls WritePng
// links PNG::PNG.
//
// Thread-safety: reentrant.
#ifndef AUTOQ_EVALUATOR_TEST_IMAGES_H_
#define AUTOQ_EVALUATOR_TEST_IMAGES_H_

#include <jpeglib.h>
#include <png.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

namespace autoq::evaluator::test_images {

// h x w pixels of 1 (gray), 3 (RGB) or 4 (RGBA, PNG only) channels, rows
// top to bottom, channels interleaved.

// Writes `pixels` to `path` as PNG. False when the file cannot be written.
inline bool WritePng(const std::string& path, const uint8_t* pixels, int h,
                     int w, int channels) {
  png_image img;
  std::memset(&img, 0, sizeof(img));
  img.version = PNG_IMAGE_VERSION;
  img.width = static_cast<png_uint_32>(w);
  img.height = static_cast<png_uint_32>(h);
  img.format = channels == 1   ? PNG_FORMAT_GRAY
               : channels == 3 ? PNG_FORMAT_RGB
                               : PNG_FORMAT_RGBA;
  return png_image_write_to_file(&img, path.c_str(), 0, pixels, 0, nullptr) !=
         0;
}

// The JPEG file's bytes of 1- or 3-channel `pixels` at `quality` (1..100).
inline std::string EncodeJpeg(const uint8_t* pixels, int h, int w,
                              int channels, int quality) {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr err;
  cinfo.err = jpeg_std_error(&err);
  jpeg_create_compress(&cinfo);
  unsigned char* mem = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &mem, &size);
  cinfo.image_width = static_cast<JDIMENSION>(w);
  cinfo.image_height = static_cast<JDIMENSION>(h);
  cinfo.input_components = channels;
  cinfo.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(pixels) +
                   static_cast<size_t>(cinfo.next_scanline) * w * channels;
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  std::string out(reinterpret_cast<char*>(mem), size);
  jpeg_destroy_compress(&cinfo);
  std::free(mem);
  return out;
}

}  // namespace autoq::evaluator::test_images

#endif  // AUTOQ_EVALUATOR_TEST_IMAGES_H_
