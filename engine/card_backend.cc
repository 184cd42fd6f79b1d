#include "engine/card_backend.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "accel/mpe_config.h"
#include "base/status.h"

namespace qsl {

absl::StatusOr<std::unique_ptr<CardLinearBackend>> CardLinearBackend::Create(
    const Model& model, DevicePoolOptions options) {
  std::vector<LinearDesc> linears;
  for (const auto& [lin, layer] : model.linears()) {
    if (!lin->quantized()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "devices: '", options.spec,
          "' runs the integer contract and needs a quantized model; this one has fp32 weights "
          "(make a packed file with `qsl quantize`, or use --devices cpu)"));
    }
    linears.push_back({lin->q, layer});
  }
  QSL_ASSIGN_OR_RETURN(std::unique_ptr<DevicePool> pool, DevicePool::Create(options));
  QSL_RETURN_IF_ERROR(pool->LoadModel(linears));
  return std::unique_ptr<CardLinearBackend>(new CardLinearBackend(std::move(pool)));
}

absl::Status CardLinearBackend::Run(const Linear& lin, const float* x, int64_t m, float* y) {
  return pool_->Linear(lin.id, x, m, y);
}

DeviceReport CardLinearBackend::Devices() const {
  DeviceReport r;
  r.description = pool_->Describe();
  r.cards = pool_->Cards();
  r.failovers = pool_->failovers();
  r.macs_per_cycle = static_cast<int64_t>(pool_->config().rows) * pool_->config().cols;
  return r;
}

absl::StatusOr<std::unique_ptr<LinearBackend>> CreateLinearBackend(const Model& model,
                                                                   const EngineOptions& options) {
  if (options.devices == "cpu") return std::make_unique<CpuLinearBackend>();
  DevicePoolOptions pool;
  pool.spec = options.devices;
  if (!options.mpe_config.empty()) {
    QSL_ASSIGN_OR_RETURN(pool.config, LoadMpeConfig(options.mpe_config));
  }
  pool.split = options.layer_split;
  QSL_ASSIGN_OR_RETURN(auto backend, CardLinearBackend::Create(model, std::move(pool)));
  return std::unique_ptr<LinearBackend>(std::move(backend));
}

}  // namespace qsl
