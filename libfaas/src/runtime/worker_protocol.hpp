// The framed protocol between the engine and its faas-worker processes, over one Unix stream socket each.
//
//   frame  := u32 size (little endian, of what follows) | u8 kind | fields
//   field  := u32 length | bytes  (text)   or   8 bytes (u64 / i64 / f64, little endian)
//
//   worker -> engine  hello   u64 pid                                 Python is up; sent once at start
//   engine -> worker  load    text name; u64 version, revision; text source, staged; u64 n; n x text site_dir;
//                             u64 timeout_ms, memory_limit_mb; u64 m; m x text "NAME=value"
//   worker -> engine  loaded  text error (empty: main is ready)
//   engine -> worker  call    text args, kwargs (JSON), id, traceparent (of the invocation, for faas_context);
//                             u64 timeout_ms (this call's, at most the function's)
//   worker -> engine  chunk   text chunk (JSON): one item a streaming function yielded, before its result
//   worker -> engine  result  u64 ok; text result, error, error_type, traceback, output; i64 start_ns, end_ns;
//                             f64 duration_ms; u64 retiring (1: the worker exits now; calls sent after this one
//                             were not run); u64 chunks, chunks_truncated; text trace_id, span_id (a trace
//                             the worker began because the function asked for its context; else empty)
//
// Calls are answered in the order sent, one at a time; the engine may send several before reading. Both sides
// treat the other's bytes as untrusted: a frame over max_frame or malformed ends the connection.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "faas/invocation.hpp"
#include "runtime/function_spec.hpp"

namespace faas::runtime::wire {

enum class Kind : std::uint8_t { hello = 1, load = 2, loaded = 3, call = 4, result = 5, chunk = 6 };

constexpr std::size_t max_frame = 64 * 1024 * 1024;

// Appends one frame to a buffer.
class FrameWriter {
 public:
  FrameWriter(std::string& out, Kind kind);
  FrameWriter& text(std::string_view value);
  FrameWriter& u64(std::uint64_t value);
  FrameWriter& i64(std::int64_t value) { return u64(static_cast<std::uint64_t>(value)); }
  FrameWriter& f64(double value);
  void finish();  // writes the size; call once, last

 private:
  std::string& out_;
  std::size_t start_;
};

// Reads the fields of one frame's body. Throws Error(internal) when the frame is shorter than its fields.
class FrameReader {
 public:
  explicit FrameReader(std::string_view frame);  // a whole frame, as FrameBuffer::next gives it
  Kind kind() const noexcept { return kind_; }
  std::string_view text();
  std::uint64_t u64();
  std::int64_t i64() { return static_cast<std::int64_t>(u64()); }
  double f64();

 private:
  std::string_view rest_;
  Kind kind_;
};

// Bytes read from the socket, cut into frames.
class FrameBuffer {
 public:
  std::string& data() noexcept { return data_; }
  // The next complete frame, if one is buffered; valid until the next call. Throws Error(internal) for a frame
  // larger than max_frame.
  std::optional<std::string_view> next();

 private:
  std::string data_;
  std::size_t consumed_ = 0;
};

// The function a worker is to serve: what of its spec the worker needs.
void write_load(std::string& out, const FunctionSpec& function);
FunctionSpec read_load(FrameReader& frame);

// What a worker reports about a call: the record's fields it fills, and whether it exits after it.
void write_result(std::string& out, const Invocation& record, bool retiring = false);
bool read_result(FrameReader& frame, Invocation& record);  // returns `retiring`

// Sends all of `bytes` on a socket (MSG_NOSIGNAL: a dead peer is an error, not SIGPIPE). False when the peer is
// gone.
bool send_all(int fd, std::string_view bytes);

}  // namespace faas::runtime::wire
