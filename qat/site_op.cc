#include "qat/site_op.h"

#include <torch/library.h>

#include <limits>

namespace autoq::qat {
namespace {

thread_local SiteHook* current_hook = nullptr;

at::Tensor SiteKernel(const at::Tensor& x, int64_t id) {
  SiteHook* hook = current_hook;
  return hook == nullptr ? x : hook->OnSite(x, id);
}

at::Tensor Site2Kernel(const at::Tensor& x, const at::Tensor& aux, int64_t id) {
  SiteHook* hook = current_hook;
  return hook == nullptr ? x : hook->OnSite2(x, aux, id);
}

at::Tensor SiteClampKernel(const at::Tensor& x, int64_t id, double lo,
                           double hi) {
  SiteHook* hook = current_hook;
  return hook == nullptr ? SiteHook::ClampActivation(x, lo, hi)
                         : hook->OnSiteClamp(x, id, lo, hi);
}

}  // namespace

at::Tensor SiteHook::ClampActivation(const at::Tensor& x, double lo,
                                     double hi) {
  if (lo == 0.0 && hi >= std::numeric_limits<float>::max()) return at::relu(x);
  return at::hardtanh(x, lo, hi);
}

ScopedSiteHook::ScopedSiteHook(SiteHook* hook) : previous_(current_hook) {
  current_hook = hook;
}

ScopedSiteHook::~ScopedSiteHook() { current_hook = previous_; }

// CONSERVATIVE aliasing: with no hook the site returns its input itself, so
// the JIT must not assume the output is a fresh tensor.
TORCH_LIBRARY(autoq, m) {
  m.def(torch::schema("site(Tensor x, int id) -> Tensor",
                      c10::AliasAnalysisKind::CONSERVATIVE),
        &SiteKernel);
  m.def(torch::schema("site2(Tensor x, Tensor aux, int id) -> Tensor",
                      c10::AliasAnalysisKind::CONSERVATIVE),
        &Site2Kernel);
  m.def(torch::schema("site_clamp(Tensor x, int id, float lo, float hi) -> Tensor",
                      c10::AliasAnalysisKind::FROM_SCHEMA),
        &SiteClampKernel);
}

}  // namespace autoq::qat
