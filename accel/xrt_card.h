// A real MPE card through XRT: card memory as xrt::bo buffers (weights written once), command
// batches run by starting the `mpe` RTL kernel and its `mpe_dma` datamover (rtl/vitis/ gives the
// packaging and the build flow). Without a card the probe says why nothing was found.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "accel/driver.h"
#include "accel/mpe_config.h"

namespace qsl {

struct XrtDeviceInfo {
  int index = 0;
  std::string name;  // platform name, e.g. xilinx_u280_gen3x16_xdma_base_1
  std::string bdf;   // PCIe bus:device.function
};

struct XrtProbe {
  std::vector<XrtDeviceInfo> devices;
  std::string note;  // why the list is empty, when it is
};

// Never fails: a missing runtime or driver is reported in `note`.
XrtProbe ProbeXrtDevices();

// Opens device `index` and loads `xclbin` (required). Errors name the device and the cause.
absl::StatusOr<std::unique_ptr<CardTransport>> OpenXrtCard(const MpeConfig& config, int index,
                                                           const std::string& xclbin);

}  // namespace qsl
