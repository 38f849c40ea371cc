#include "runtime/worker_protocol.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "faas/error.hpp"

namespace faas::runtime::wire {

namespace {

void put_le(std::string& out, std::uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

std::uint64_t get_le(std::string_view bytes) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < bytes.size(); ++i) value |= std::uint64_t(static_cast<unsigned char>(bytes[i])) << (8 * i);
  return value;
}

[[noreturn]] void malformed(const char* what) {
  throw Error(ErrorCode::internal, std::string("malformed worker frame: ") + what);
}

}  // namespace

FrameWriter::FrameWriter(std::string& out, Kind kind) : out_(out), start_(out.size()) {
  put_le(out_, 0, 4);
  out_.push_back(static_cast<char>(kind));
}

FrameWriter& FrameWriter::text(std::string_view value) {
  put_le(out_, value.size(), 4);
  out_.append(value);
  return *this;
}

FrameWriter& FrameWriter::u64(std::uint64_t value) {
  put_le(out_, value, 8);
  return *this;
}

FrameWriter& FrameWriter::f64(double value) {
  std::uint64_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return u64(bits);
}

void FrameWriter::finish() {
  std::uint64_t size = out_.size() - start_ - 4;
  for (int i = 0; i < 4; ++i) out_[start_ + i] = static_cast<char>((size >> (8 * i)) & 0xff);
}

FrameReader::FrameReader(std::string_view frame) {
  if (frame.size() < 5) malformed("too short");
  kind_ = static_cast<Kind>(static_cast<unsigned char>(frame[4]));
  rest_ = frame.substr(5);
}

std::string_view FrameReader::text() {
  if (rest_.size() < 4) malformed("truncated text length");
  auto size = get_le(rest_.substr(0, 4));
  if (rest_.size() - 4 < size) malformed("truncated text");
  auto value = rest_.substr(4, size);
  rest_.remove_prefix(4 + size);
  return value;
}

std::uint64_t FrameReader::u64() {
  if (rest_.size() < 8) malformed("truncated number");
  auto value = get_le(rest_.substr(0, 8));
  rest_.remove_prefix(8);
  return value;
}

double FrameReader::f64() {
  std::uint64_t bits = u64();
  double value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

std::optional<std::string_view> FrameBuffer::next() {
  if (consumed_ > 0 && consumed_ * 2 >= data_.size()) {  // drop what was handed out, in amortised O(1)
    data_.erase(0, consumed_);
    consumed_ = 0;
  }
  std::string_view rest(data_);
  rest.remove_prefix(consumed_);
  if (rest.size() < 4) return std::nullopt;
  auto size = get_le(rest.substr(0, 4));
  if (size > max_frame) malformed("frame too large");
  if (rest.size() - 4 < size) return std::nullopt;
  consumed_ += 4 + size;
  return rest.substr(0, 4 + size);
}

namespace {

std::int64_t to_ns(Invocation::Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

Invocation::Clock::time_point from_ns(std::int64_t ns) {
  return Invocation::Clock::time_point(
      std::chrono::duration_cast<Invocation::Clock::duration>(std::chrono::nanoseconds(ns)));
}

}  // namespace

void write_load(std::string& out, const FunctionSpec& function) {
  FrameWriter frame(out, Kind::load);
  frame.text(function.name).u64(function.version).u64(function.revision).text(function.source.string());
  frame.text(function.staged_source.string()).u64(function.site_dirs.size());
  for (const auto& dir : function.site_dirs) frame.text(dir);
  frame.u64(static_cast<std::uint64_t>(function.timeout.count())).u64(function.memory_limit_mb);
  frame.u64(function.environment.size());
  for (const auto& variable : function.environment) frame.text(variable);
  frame.finish();
}

FunctionSpec read_load(FrameReader& frame) {
  FunctionSpec function;
  function.name = frame.text();
  function.version = frame.u64();
  function.revision = frame.u64();
  function.source = std::string(frame.text());
  function.staged_source = std::string(frame.text());
  // Counts are checked by the reads themselves: each field needs bytes the frame must have.
  for (auto dirs = frame.u64(); dirs > 0; --dirs) function.site_dirs.emplace_back(frame.text());
  function.timeout = std::chrono::milliseconds(static_cast<std::int64_t>(frame.u64()));
  function.memory_limit_mb = frame.u64();
  for (auto variables = frame.u64(); variables > 0; --variables) function.environment.emplace_back(frame.text());
  return function;
}

void write_result(std::string& out, const Invocation& record, bool retiring) {
  FrameWriter frame(out, Kind::result);
  frame.u64(record.ok() ? 1 : 0)
      .text(record.result)
      .text(record.error)
      .text(record.error_type)
      .text(record.traceback)
      .text(record.output)
      .i64(to_ns(record.time_start))
      .i64(to_ns(record.time_end))
      .f64(record.duration_ms)
      .u64(retiring ? 1 : 0)
      .u64(record.chunks)
      .u64(record.chunks_truncated ? 1 : 0)
      .text(record.trace_id)
      .text(record.span_id);
  frame.finish();
}

bool read_result(FrameReader& frame, Invocation& record) {
  if (frame.kind() != Kind::result) malformed("expected a result");
  record.status = frame.u64() != 0 ? InvocationStatus::success : InvocationStatus::error;
  record.result = frame.text();
  record.error = frame.text();
  record.error_type = frame.text();
  record.traceback = frame.text();
  record.output = frame.text();
  record.time_start = from_ns(frame.i64());
  record.time_end = from_ns(frame.i64());
  record.duration_ms = frame.f64();
  const bool retiring = frame.u64() != 0;
  record.chunks = frame.u64();
  record.chunks_truncated = frame.u64() != 0;
  auto trace_id = frame.text();
  auto span_id = frame.text();
  if (record.trace_id.empty() && !trace_id.empty()) {  // begun in the worker, when the function asked for it
    record.trace_id = trace_id;
    record.span_id = span_id;
  }
  return retiring;
}

bool send_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t sent = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(sent));
  }
  return true;
}

}  // namespace faas::runtime::wire
