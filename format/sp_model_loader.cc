// Opens the sentencepiece module privately (see sp_model.h) and forwards SpModel::Load to it.
#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>

#include "format/sp_model.h"

namespace qsl::internal {
namespace {

using LoadFn = SpModel* (*)(const std::string*, std::string*);

// AddressSanitizer refuses RTLD_DEEPBIND (google/sanitizers#611). Without it the module still
// works in processes without libprotobuf (sanitized format tests, fuzzers); with libprotobuf
// loaded (the server), sentencepiece would bind to the wrong protobuf, so those need a plain build.
#if defined(__SANITIZE_ADDRESS__)
constexpr int kDeepBind = 0;
#else
constexpr int kDeepBind = RTLD_DEEPBIND;
#endif

std::string ExecutableDir() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  std::string path(buf, static_cast<size_t>(n));
  return path.substr(0, path.rfind('/'));
}

// Opened once per process; on failure `error` says which paths were tried and why.
LoadFn OpenModule(std::string* error) {
  static std::once_flag once;
  static LoadFn load = nullptr;
  static std::string failure;
  std::call_once(once, [] {
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("QSL_SENTENCEPIECE_MODULE")) candidates.push_back(env);
    candidates.push_back(ExecutableDir() + "/libqsl_sentencepiece.so");
    candidates.push_back(ExecutableDir() + "/../lib/qsl/libqsl_sentencepiece.so");  // installed
    candidates.push_back(QSL_SENTENCEPIECE_MODULE);
    for (const std::string& path : candidates) {
      void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | kDeepBind);
      if (handle == nullptr) {
        failure += std::string(failure.empty() ? "" : "; ") + dlerror();
        continue;
      }
      load = reinterpret_cast<LoadFn>(dlsym(handle, "qsl_sp_model_load"));
      if (load != nullptr) return;
      failure += "; " + path + ": no qsl_sp_model_load";
    }
  });
  if (load == nullptr) *error = "cannot open the sentencepiece module: " + failure;
  return load;
}

}  // namespace

std::unique_ptr<SpModel> SpModel::Load(const std::string& bytes, std::string* error) {
  LoadFn load = OpenModule(error);
  if (load == nullptr) return nullptr;
  return std::unique_ptr<SpModel>(load(&bytes, error));
}

}  // namespace qsl::internal
