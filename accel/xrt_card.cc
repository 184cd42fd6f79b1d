// XRT transport. Every XRT call can throw; each is caught here and turned into a Status that
// names the device, so no exception leaves the subsystem.
#include "accel/xrt_card.h"

#include <cstdlib>
#include <map>
#include <optional>

#include "absl/strings/str_cat.h"
#include "accel/command_stream.h"
#include "base/status.h"
#include "experimental/xrt_system.h"
#include "xrt/xrt_bo.h"
#include "xrt/xrt_device.h"
#include "xrt/xrt_kernel.h"

namespace qsl {
namespace {

// Arguments of the two kernels (rtl/vitis/kernel.xml and rtl/vitis/mpe_dma.cpp).
constexpr int kMpeArgNumCommands = 0;
constexpr int kDmaArgCommands = 0, kDmaArgNumCommands = 1, kDmaArgMem = 2, kDmaArgMemBase = 3;
constexpr unsigned kRunTimeoutMs = 10000;

template <typename Fn>
absl::Status Guard(const std::string& what, Fn&& fn) {
  try {
    fn();
    return absl::OkStatus();
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat(what, ": ", e.what()));
  }
}

class XrtCard : public CardTransport {
 public:
  XrtCard(MpeConfig config, int index) : config_(std::move(config)), index_(index) {}

  absl::Status Open(const std::string& xclbin) {
    return Guard(absl::StrCat("xrt:", index_), [&] {
      device_ = xrt::device(static_cast<unsigned>(index_));
      const xrt::uuid uuid = device_.load_xclbin(xclbin);
      mpe_ = xrt::kernel(device_, uuid, "mpe", xrt::kernel::cu_access_mode::exclusive);
      dma_ = xrt::kernel(device_, uuid, "mpe_dma");
      name_ = device_.get_info<xrt::info::device::name>();
      anchor_ = xrt::bo(device_, 4096, dma_.group_id(kDmaArgMem));
    });
  }

  const MpeConfig& config() const override { return config_; }
  std::string Describe() const override {
    return absl::StrCat("xrt:", index_, " (", name_, ", ", config_.name, " ", config_.rows, "x",
                        config_.cols, ")");
  }

  absl::StatusOr<uint64_t> Allocate(uint64_t bytes) override {
    if (used_ + bytes > static_cast<uint64_t>(config_.mem_bytes)) {
      return absl::ResourceExhaustedError(absl::StrCat(Describe(), ": card memory full"));
    }
    uint64_t addr = 0;
    QSL_RETURN_IF_ERROR(Guard(Describe(), [&] {
      xrt::bo bo(device_, bytes, dma_.group_id(kDmaArgMem));
      addr = bo.address();
      buffers_.emplace(addr, Buffer{std::move(bo), bytes});
    }));
    used_ += bytes;
    return addr;
  }

  absl::Status Free(uint64_t addr) override {
    auto it = buffers_.find(addr);
    if (it == buffers_.end()) return absl::NotFoundError("xrt: no buffer at that address");
    used_ -= it->second.size;
    buffers_.erase(it);
    return absl::OkStatus();
  }

  absl::Status Write(uint64_t addr, const void* src, uint64_t bytes) override {
    QSL_ASSIGN_OR_RETURN(auto where, Locate(addr, bytes));
    return Guard(Describe(), [&] {
      where.first->write(src, bytes, where.second);
      where.first->sync(XCL_BO_SYNC_BO_TO_DEVICE, bytes, where.second);
    });
  }

  absl::Status Read(uint64_t addr, void* dst, uint64_t bytes) override {
    QSL_ASSIGN_OR_RETURN(auto where, Locate(addr, bytes));
    return Guard(Describe(), [&] {
      where.first->sync(XCL_BO_SYNC_BO_FROM_DEVICE, bytes, where.second);
      where.first->read(dst, bytes, where.second);
    });
  }

  absl::StatusOr<RunStats> Execute(std::span<const Command> commands) override {
    const std::vector<uint8_t> bytes = EncodeCommands(commands);
    const uint32_t n = static_cast<uint32_t>(commands.size());
    RunStats stats;
    uint32_t status = 0;
    QSL_RETURN_IF_ERROR(Guard(Describe(), [&] {
      if (!commands_ || commands_->size() < bytes.size()) {
        commands_ = xrt::bo(device_, bytes.size(), dma_.group_id(kDmaArgCommands));
      }
      commands_->write(bytes.data(), bytes.size(), 0);
      commands_->sync(XCL_BO_SYNC_BO_TO_DEVICE, bytes.size(), 0);
      xrt::run mpe(mpe_);
      mpe.set_arg(kMpeArgNumCommands, n);
      mpe.start();
      xrt::run dma(dma_);
      dma.set_arg(kDmaArgCommands, *commands_);
      dma.set_arg(kDmaArgNumCommands, n);
      dma.set_arg(kDmaArgMem, anchor_);
      dma.set_arg(kDmaArgMemBase, anchor_.address());
      dma.start();
      if (dma.wait(kRunTimeoutMs) != ERT_CMD_STATE_COMPLETED ||
          mpe.wait(kRunTimeoutMs) != ERT_CMD_STATE_COMPLETED) {
        throw std::runtime_error("command batch did not complete in time");
      }
      stats.cycles = static_cast<int64_t>(mpe_.read_register(mpe_regs::kCyclesLo)) |
                     (static_cast<int64_t>(mpe_.read_register(mpe_regs::kCyclesHi)) << 32);
      status = mpe_.read_register(mpe_regs::kStatus);
    }));
    if (status != 0) {
      return absl::InternalError(absl::StrCat(Describe(), ": the MPE stopped with status ", status,
                                              " (", MpeStatusName(status), ")"));
    }
    return stats;
  }

 private:
  struct Buffer {
    xrt::bo bo;
    uint64_t size = 0;
  };

  absl::StatusOr<std::pair<xrt::bo*, uint64_t>> Locate(uint64_t addr, uint64_t bytes) {
    auto it = buffers_.upper_bound(addr);
    if (it != buffers_.begin()) {
      --it;
      const uint64_t off = addr - it->first;
      if (off + bytes <= it->second.size) return std::make_pair(&it->second.bo, off);
    }
    return absl::OutOfRangeError(absl::StrCat(Describe(), ": [", addr, ", ", addr + bytes,
                                              ") is not inside one buffer"));
  }

  MpeConfig config_;
  int index_;
  std::string name_;
  xrt::device device_;
  xrt::kernel mpe_, dma_;
  xrt::bo anchor_;
  std::optional<xrt::bo> commands_;
  std::map<uint64_t, Buffer> buffers_;
  uint64_t used_ = 0;
};

}  // namespace

XrtProbe ProbeXrtDevices() {
  XrtProbe probe;
  if (std::getenv("XILINX_XRT") == nullptr) {
    probe.note = "XILINX_XRT is not set: the XRT runtime is not set up; source its setup.sh";
    return probe;
  }
  const absl::Status st = Guard("xrt", [&] {
    const unsigned n = xrt::system::enumerate_devices();
    for (unsigned i = 0; i < n; ++i) {
      xrt::device d(i);
      probe.devices.push_back({static_cast<int>(i), d.get_info<xrt::info::device::name>(),
                               d.get_info<xrt::info::device::bdf>()});
    }
  });
  if (!st.ok()) probe.note = std::string(st.message());
  if (probe.devices.empty() && probe.note.empty()) {
    probe.note = "XRT enumerated 0 devices: no card, or the xocl driver is not loaded";
  }
  return probe;
}

absl::StatusOr<std::unique_ptr<CardTransport>> OpenXrtCard(const MpeConfig& config, int index,
                                                           const std::string& xclbin) {
  if (xclbin.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("xrt:", index, ": no MPE bitstream given (--xclbin; rtl/vitis/README.md "
                     "builds it)"));
  }
  auto card = std::make_unique<XrtCard>(config, index);
  QSL_RETURN_IF_ERROR(card->Open(xclbin));
  return card;
}

}  // namespace qsl
