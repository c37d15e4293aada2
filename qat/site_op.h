// The `autoq::site(Tensor x, int id) -> Tensor` operator.
//
// Analysis and QAT insert one site node after each quantizable layer's
// output in a private copy of the model's TorchScript graph. What a site
// does is decided at run time by the SiteHook installed on the calling
// thread: record the shape (MAC counting), observe and fake-quantize the
// activation (QAT), or nothing (no hook: identity). This keeps a single
// instrumented graph per model and no per-variant graph rewrites.
//
// Thread-safety: the hook is thread-local, so models running on different
// threads never see each other's hooks.
#ifndef AUTOQ_QAT_SITE_OP_H_
#define AUTOQ_QAT_SITE_OP_H_

#include <cstdint>

#include <ATen/ATen.h>

namespace autoq::qat {

// Qualified names of the site operators in TorchScript graphs. site2 takes
// a second tensor (the exact BN fold's float convolution output).
inline constexpr char kSiteOpName[] = "autoq::site";
inline constexpr char kSite2OpName[] = "autoq::site2";
// site_clamp(x, id, lo, hi) replaces a ReLU / ReLU6 / hardtanh and its site:
// the clamp and the activation's quantization run as one pass.
inline constexpr char kSiteClampOpName[] = "autoq::site_clamp";

class SiteHook {
 public:
  virtual ~SiteHook() = default;
  // Called by the site with id `id`; returns the tensor the graph continues
  // with. Must not throw except for genuine errors (they abort the forward).
  virtual at::Tensor OnSite(const at::Tensor& x, int64_t id) = 0;
  // autoq::site_clamp; by default the original activation, then OnSite.
  virtual at::Tensor OnSiteClamp(const at::Tensor& x, int64_t id, double lo,
                                 double hi) {
    return OnSite(ClampActivation(x, lo, hi), id);
  }

  // The activation a site_clamp replaced, computed as ATen's relu or
  // hardtanh (so float runs match the unmodified model bit for bit).
  static at::Tensor ClampActivation(const at::Tensor& x, double lo, double hi);
  // autoq::site2; without an override the first input passes through.
  virtual at::Tensor OnSite2(const at::Tensor& x, const at::Tensor& aux,
                             int64_t id) {
    return x;
  }
};

// Installs `hook` for the current thread for the lifetime of the object,
// restoring the previous one afterwards (scopes nest).
class ScopedSiteHook {
 public:
  explicit ScopedSiteHook(SiteHook* hook);
  ~ScopedSiteHook();
  ScopedSiteHook(const ScopedSiteHook&) = delete;
  ScopedSiteHook& operator=(const ScopedSiteHook&) = delete;

 private:
  SiteHook* previous_;
};

}  // namespace autoq::qat

#endif  // AUTOQ_QAT_SITE_OP_H_
