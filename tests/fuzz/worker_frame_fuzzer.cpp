// libFuzzer target for the engine's reader of worker frames (libfaas/src/runtime/worker_protocol.cpp): the bytes a
// faas-worker sends, which run user code and so are untrusted. The input is fed to a FrameBuffer in chunks whose
// sizes the first byte picks; each frame is read as its kind says. A malformed frame must end in Error(internal);
// a result that reads must read the same after it is written again. Anything else is a finding.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "faas/error.hpp"
#include "runtime/worker_protocol.hpp"

namespace wire = faas::runtime::wire;

namespace {

bool same(const faas::Invocation& a, const faas::Invocation& b) {
  return a.status == b.status && a.result == b.result && a.error == b.error && a.error_type == b.error_type &&
         a.traceback == b.traceback && a.output == b.output && a.time_start == b.time_start &&
         a.time_end == b.time_end &&
         (a.duration_ms == b.duration_ms || (a.duration_ms != a.duration_ms && b.duration_ms != b.duration_ms));
}

void read_frame(std::string_view frame) {
  wire::FrameReader reader(frame);
  switch (reader.kind()) {
    case wire::Kind::hello:
      reader.u64();
      break;
    case wire::Kind::loaded:
      reader.text();
      break;
    case wire::Kind::result: {
      faas::Invocation record;
      bool retiring = wire::read_result(reader, record);
      std::string again;
      wire::write_result(again, record, retiring);
      wire::FrameBuffer buffer;
      buffer.data() = again;
      auto copy = buffer.next();
      if (!copy || copy->size() != again.size()) std::abort();
      wire::FrameReader copy_reader(*copy);
      faas::Invocation reread;
      if (wire::read_result(copy_reader, reread) != retiring || !same(record, reread)) std::abort();
      break;
    }
    case wire::Kind::load: {  // what a worker reads from the engine
      auto function = wire::read_load(reader);
      std::string again;
      wire::write_load(again, function);
      wire::FrameBuffer buffer;
      buffer.data() = again;
      auto copy = buffer.next();
      if (!copy) std::abort();
      wire::FrameReader copy_reader(*copy);
      auto reread = wire::read_load(copy_reader);
      if (reread.name != function.name || reread.revision != function.revision ||
          reread.site_dirs != function.site_dirs || reread.environment != function.environment ||
          reread.timeout != function.timeout || reread.memory_limit_mb != function.memory_limit_mb) {
        std::abort();
      }
      break;
    }
    default:
      throw faas::Error(faas::ErrorCode::internal, "unexpected frame");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::size_t chunk = 1 + data[0] % 64;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  wire::FrameBuffer buffer;
  try {
    while (!input.empty()) {
      auto piece = input.substr(0, chunk);
      input.remove_prefix(piece.size());
      buffer.data().append(piece);
      while (auto frame = buffer.next()) read_frame(*frame);
    }
  } catch (const faas::Error& e) {
    if (e.code() != faas::ErrorCode::internal) std::abort();
  }
  return 0;
}
