#include "evaluator/image_decode.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"

#ifdef AUTOQ_WITH_IMAGES
#include <jpeglib.h>
#include <png.h>
#endif

namespace autoq::evaluator {
namespace {

bool EndsWithNoCase(const std::string& s, const std::string& suffix) {
  if (s.size() < suffix.size()) return false;
  for (size_t i = 0; i < suffix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(
            s[s.size() - suffix.size() + i])) != suffix[i]) {
      return false;
    }
  }
  return true;
}

#ifdef AUTOQ_WITH_IMAGES

// libjpeg reports fatal errors through error_exit, which must not return:
// jump back to the decode call with the message.
struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void JpegErrorExit(j_common_ptr cinfo) {
  JpegError* e = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, e->message);
  std::longjmp(e->jump, 1);
}

void JpegQuiet(j_common_ptr, int) {}  // warnings of recoverable damage

// Larger images are refused before their pixels are allocated: a few bytes
// of header can declare gigabytes. The fuzz build lowers the limit (same
// code paths, each input bounded to 2^16 pixels) to keep its speed.
#ifndef AUTOQ_MAX_IMAGE_PIXELS_LOG2
#define AUTOQ_MAX_IMAGE_PIXELS_LOG2 26
#endif
constexpr int64_t kMaxImagePixels = int64_t{1}
                                    << AUTOQ_MAX_IMAGE_PIXELS_LOG2;  // 8192^2

// The libjpeg part alone. libjpeg's error handler longjmps back here, so
// this frame holds no object with a destructor and changes no local after
// setjmp: the image is the caller's (`out`), the error text goes to `err`.
bool DecodeJpegInto(const std::string& bytes, Image* out, JpegError* err) {
  jpeg_decompress_struct cinfo;
  cinfo.err = jpeg_std_error(&err->mgr);
  err->mgr.error_exit = JpegErrorExit;
  err->mgr.emit_message = JpegQuiet;
  if (setjmp(err->jump) != 0) {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(bytes.data()),
               static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&cinfo, TRUE);
  // CMYK and YCCK become RGB through libjpeg-turbo's own conversion where it
  // can; gray stays gray.
  cinfo.out_color_space =
      cinfo.jpeg_color_space == JCS_GRAYSCALE ? JCS_GRAYSCALE : JCS_RGB;
  if (static_cast<int64_t>(cinfo.image_width) * cinfo.image_height >
      kMaxImagePixels) {
    std::snprintf(err->message, sizeof(err->message),
                  "%ux%u pixels is over the limit of %lld",
                  cinfo.image_width, cinfo.image_height,
                  static_cast<long long>(kMaxImagePixels));
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_start_decompress(&cinfo);
  out->width = cinfo.output_width;
  out->height = cinfo.output_height;
  out->channels = cinfo.output_components;
  out->pixels.resize(
      static_cast<size_t>(out->width * out->height * out->channels));
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = out->pixels.data() +
                   static_cast<size_t>(cinfo.output_scanline) *
                       static_cast<size_t>(out->width * out->channels);
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return true;
}

absl::StatusOr<Image> DecodeJpeg(const std::string& bytes,
                                 const std::string& name) {
  JpegError err;
  Image image;
  if (!DecodeJpegInto(bytes, &image, &err)) {
    return absl::DataLossError(
        absl::StrCat(name, ": cannot decode the JPEG image: ", err.message));
  }
  return image;
}

absl::StatusOr<Image> DecodePng(const std::string& bytes,
                                const std::string& name) {
  png_image png;
  std::memset(&png, 0, sizeof(png));
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&png, bytes.data(), bytes.size())) {
    return absl::DataLossError(
        absl::StrCat(name, ": cannot decode the PNG image: ", png.message));
  }
  // Keep gray as gray and color as color, alpha included (FitImage drops
  // it); 16-bit samples and palettes come out as 8-bit values.
  const bool color = (png.format & PNG_FORMAT_FLAG_COLOR) != 0;
  const bool alpha = (png.format & PNG_FORMAT_FLAG_ALPHA) != 0;
  png.format = color ? (alpha ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB)
                     : (alpha ? PNG_FORMAT_GA : PNG_FORMAT_GRAY);
  if (static_cast<int64_t>(png.width) * png.height > kMaxImagePixels) {
    png_image_free(&png);
    return absl::DataLossError(absl::StrCat(
        name, ": cannot decode the PNG image: ", png.width, "x", png.height,
        " pixels is over the limit of ", kMaxImagePixels));
  }
  Image image;
  image.width = png.width;
  image.height = png.height;
  image.channels = PNG_IMAGE_SAMPLE_CHANNELS(png.format);
  image.pixels.resize(PNG_IMAGE_SIZE(png));
  if (!png_image_finish_read(&png, nullptr, image.pixels.data(), 0, nullptr)) {
    const std::string why = png.message;
    png_image_free(&png);
    return absl::DataLossError(
        absl::StrCat(name, ": cannot decode the PNG image: ", why));
  }
  return image;
}

#endif  // AUTOQ_WITH_IMAGES

// `src` (h x w, `c` interleaved channels) as `out_c` channels.
std::vector<float> ToChannels(const Image& src, int64_t out_c) {
  const int64_t n = src.height * src.width, c = src.channels;
  std::vector<float> out(static_cast<size_t>(n * out_c));
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* p = &src.pixels[static_cast<size_t>(i * c)];
    const bool color = c >= 3;
    if (out_c == 1) {
      out[static_cast<size_t>(i)] =
          color ? 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2] : p[0];
    } else {
      for (int64_t k = 0; k < out_c; ++k) {
        out[static_cast<size_t>(i * out_c + k)] = color ? p[k] : p[0];
      }
    }
  }
  return out;
}

// Resamples one axis: `len` samples at `stride` apart, `lines` lines of
// them `line_step` apart, to `out_len` samples, of which it writes those
// in [first, first + count): bilinear when growing and box-averaged when
// shrinking (each output sample averages the input span it covers).
void Resample(const std::vector<float>& in, int64_t len, int64_t out_len,
              int64_t first, int64_t count, int64_t lines, int64_t line_step,
              int64_t stride, std::vector<float>* out, int64_t out_line_step,
              int64_t out_stride) {
  const double scale = static_cast<double>(len) / static_cast<double>(out_len);
  for (int64_t j = first; j < first + count; ++j) {
    double lo = j * scale, hi = (j + 1) * scale;
    for (int64_t l = 0; l < lines; ++l) {
      const float* src = in.data() + l * line_step;
      double v = 0;
      if (scale > 1.0) {
        double sum = 0;
        for (int64_t i = static_cast<int64_t>(std::floor(lo));
             i < std::min<int64_t>(len, static_cast<int64_t>(std::ceil(hi)));
             ++i) {
          const double w =
              std::min<double>(hi, i + 1) - std::max<double>(lo, i);
          v += w * src[i * stride];
          sum += w;
        }
        v = sum > 0 ? v / sum : 0;
      } else {
        const double x = std::clamp((j + 0.5) * scale - 0.5, 0.0,
                                    static_cast<double>(len - 1));
        const int64_t i0 = static_cast<int64_t>(std::floor(x));
        const int64_t i1 = std::min(i0 + 1, len - 1);
        const double t = x - i0;
        v = (1 - t) * src[i0 * stride] + t * src[i1 * stride];
      }
      (*out)[static_cast<size_t>(l * out_line_step +
                                 (j - first) * out_stride)] =
          static_cast<float>(v);
    }
  }
}

}  // namespace

bool ImageDecodingAvailable() {
#ifdef AUTOQ_WITH_IMAGES
  return true;
#else
  return false;
#endif
}

bool IsImageFileName(const std::string& name) {
  return EndsWithNoCase(name, ".jpg") || EndsWithNoCase(name, ".jpeg") ||
         EndsWithNoCase(name, ".png");
}

absl::StatusOr<Image> DecodeImage(const std::string& bytes,
                                  const std::string& name) {
#ifdef AUTOQ_WITH_IMAGES
  const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
  if (bytes.size() >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) {
    return DecodeJpeg(bytes, name);
  }
  if (bytes.size() >= 8 && std::memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0) {
    return DecodePng(bytes, name);
  }
  return absl::DataLossError(absl::StrCat(name, ": not a JPEG or PNG image"));
#else
  return absl::UnimplementedError(
      absl::StrCat(name,
                   ": this build cannot decode images (install libjpeg-dev and "
                   "libpng-dev, then rebuild)"));
#endif
}

std::vector<uint8_t> FitImage(const Image& image, int64_t channels,
                              int64_t height, int64_t width) {
  const std::vector<float> src = ToChannels(image, channels);
  // Resize so the shorter side matches (the other at least its target),
  // then take the center.
  const double s = std::max(static_cast<double>(height) / image.height,
                            static_cast<double>(width) / image.width);
  const int64_t rh = std::max<int64_t>(height, std::lround(image.height * s));
  const int64_t rw = std::max<int64_t>(width, std::lround(image.width * s));
  const int64_t top = (rh - height) / 2, left = (rw - width) / 2;
  const int64_t c = channels, ih = image.height, iw = image.width;
  // Only the output's window of the resized image is computed, one axis
  // at a time, in the order with the smaller intermediate: resizing a
  // 1 x 65535 strip whole would take gigabytes.
  const bool width_first = ih * width <= height * iw;
  std::vector<uint8_t> fitted(static_cast<size_t>(c * height * width));
  // `src` is HWC, `fitted` CHW.
  for (int64_t k = 0; k < c; ++k) {
    std::vector<float> plane(static_cast<size_t>(ih * iw));
    for (int64_t i = 0; i < ih * iw; ++i) {
      plane[static_cast<size_t>(i)] = src[static_cast<size_t>(i * c + k)];
    }
    std::vector<float> part, out(static_cast<size_t>(height * width));
    if (width_first) {
      // Rows: ih lines of iw -> columns [left, left + width) of rw; then
      // columns: width lines of ih -> rows [top, top + height) of rh.
      part.resize(static_cast<size_t>(ih * width));
      Resample(plane, iw, rw, left, width, ih, iw, 1, &part, width, 1);
      Resample(part, ih, rh, top, height, width, 1, width, &out, 1, width);
    } else {
      part.resize(static_cast<size_t>(height * iw));
      Resample(plane, ih, rh, top, height, iw, 1, iw, &part, 1, iw);
      Resample(part, iw, rw, left, width, height, iw, 1, &out, width, 1);
    }
    for (size_t i = 0; i < out.size(); ++i) {
      fitted[static_cast<size_t>(k * height * width) + i] =
          static_cast<uint8_t>(std::clamp(std::lround(out[i]), 0L, 255L));
    }
  }
  return fitted;
}

}  // namespace autoq::evaluator
