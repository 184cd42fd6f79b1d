// Linear layers on a pool of MPE cards (simulated, Verilated or XRT): the model's packed weights
// are placed on the cards once, as a layer pipeline, and every call runs on the card that owns
// its layer. The bits equal CpuLinearBackend's on the same packed weights.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "accel/device_pool.h"
#include "engine/linear_backend.h"
#include "engine/model.h"

namespace qsl {

class CardLinearBackend final : public LinearBackend {
 public:
  // Opens the cards `options` names and places every linear of `model` (which must be quantized
  // and outlive the backend). Errors: a bad device spec or config, no such device, an fp32 model.
  static absl::StatusOr<std::unique_ptr<CardLinearBackend>> Create(const Model& model,
                                                                   DevicePoolOptions options);

  absl::Status Run(const Linear& lin, const float* x, int64_t m, float* y) override;
  DeviceReport Devices() const override;

  DevicePool& pool() { return *pool_; }

 private:
  explicit CardLinearBackend(std::unique_ptr<DevicePool> pool) : pool_(std::move(pool)) {}
  std::unique_ptr<DevicePool> pool_;
};

// Builds the backend EngineOptions ask for: the CPU for "cpu", cards otherwise.
absl::StatusOr<std::unique_ptr<LinearBackend>> CreateLinearBackend(const Model& model,
                                                                   const EngineOptions& options);

}  // namespace qsl
