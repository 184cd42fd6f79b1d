// `qsl inspect FILE`: validates a packed model file and prints its header, config, provenance
// and tensor table (scheme, shape, tile, bytes per tensor), with a size summary.
#include <cstdio>
#include <map>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "base/status.h"
#include "format/packed_file.h"
#include "tools/qsl/commands.h"

namespace qsl::cli {
namespace {

struct InspectOptions {
  std::string path;
  bool no_verify = false;
  bool brief = false;
};

std::string Describe(const PackedTensor& t) {
  if (t.dtype == PackedDType::kW4) {
    return absl::StrFormat("tile %dx%d group %d", t.layout.tile_k, t.layout.tile_n, t.layout.group);
  }
  if (t.dtype == PackedDType::kW8) {
    return absl::StrFormat("tile %dx%d", t.layout.tile_k, t.layout.tile_n);
  }
  return "";
}

absl::Status Run(const InspectOptions& o) {
  QSL_ASSIGN_OR_RETURN(auto m, PackedModel::Open(o.path, {.verify_checksums = !o.no_verify}));
  const ModelConfig& c = m->config();
  std::printf("file      %s\n", m->path().c_str());
  std::printf("format    qsl packed model, version %u, little-endian, %llu bytes (%.2f MiB)\n",
              m->format_version(), static_cast<unsigned long long>(m->file_size()),
              static_cast<double>(m->file_size()) / (1 << 20));
  std::printf("checks    header, sections, table, W4 group ranges%s\n",
              o.no_verify ? " (tensor checksums skipped)" : ", tensor checksums (XXH3-64)");
  for (const PackedSection& s : m->sections()) {
    std::printf("section   %-12s offset %12llu  size %12llu\n", s.name.c_str(),
                static_cast<unsigned long long>(s.offset), static_cast<unsigned long long>(s.size));
  }
  std::printf(
      "model     %s: hidden %lld, %lld layers, %lld heads / %lld kv heads, mlp %lld, "
      "vocab %lld%s\n",
      c.architecture.c_str(), (long long)c.hidden_size, (long long)c.num_layers,
      (long long)c.num_heads, (long long)c.num_kv_heads, (long long)c.intermediate_size,
      (long long)c.vocab_size, c.tie_word_embeddings ? ", tied embeddings" : "");
  std::printf("tokenizer %d pieces, %zu bytes\n", m->tokenizer().vocab_size(),
              m->tokenizer().bytes().size());
  std::printf("provenance\n%s\n", m->provenance_json().c_str());

  struct Sum {
    int64_t tensors = 0, params = 0;
    uint64_t bytes = 0;
  };
  std::map<std::string, Sum> sums;
  if (!o.brief) {
    std::printf("\n%-52s %-4s %-14s %-22s %12s\n", "tensor", "type", "shape", "layout", "bytes");
  }
  for (const PackedTensor& t : m->tensors()) {
    Sum& s = sums[PackedDTypeName(t.dtype)];
    ++s.tensors;
    s.params += t.numel();
    s.bytes += t.size;
    if (o.brief) continue;
    std::printf("%-52s %-4s %-14s %-22s %12llu\n", t.name.c_str(), PackedDTypeName(t.dtype),
                absl::StrCat("[", absl::StrJoin(t.shape, ", "), "]").c_str(), Describe(t).c_str(),
                static_cast<unsigned long long>(t.size));
  }
  std::printf("\n%-5s %8s %14s %14s %10s\n", "type", "tensors", "elements", "bytes", "bits/elem");
  for (const auto& [name, s] : sums) {
    std::printf("%-5s %8lld %14lld %14llu %10.3f\n", name.c_str(), (long long)s.tensors,
                (long long)s.params, static_cast<unsigned long long>(s.bytes),
                8.0 * static_cast<double>(s.bytes) / static_cast<double>(s.params));
  }
  return absl::OkStatus();
}

}  // namespace

void AddInspectCommand(CLI::App& app) {
  auto o = std::make_shared<InspectOptions>();
  CLI::App* cmd = app.add_subcommand(
      "inspect", "Validate a packed model file and print its header, provenance and tensors");
  cmd->add_option("file", o->path, "Packed model file")->required();
  cmd->add_flag("--no-verify", o->no_verify, "Skip the tensor checksums (faster on big files)");
  cmd->add_flag("--brief", o->brief, "Omit the per-tensor table");
  cmd->callback([o] { ExitOnError("inspect", Run(*o)); });
}

}  // namespace qsl::cli
