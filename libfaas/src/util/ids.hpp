// Random identifiers for invocations and requests.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace faas {

// A random (version 4) UUID in its canonical 36-character form. Fast and thread-safe: each thread draws from its
// own generator seeded from the OS. Unique, not secret.
std::string make_uuid4();

// A UUID in version-4 form whose first 48 bits are the Unix time in milliseconds, followed by a 12-bit counter,
// so ids made by one process strictly increase (62 bits stay random). Invocation ids use it: the store keys
// records by id, and ids that grow with time land at the end of its B-trees instead of scattering writes across
// them (random ids made commits ~3x slower, and slower still as the log grew); sorting by id sorts by start time.
std::string make_time_ordered_uuid();
// The same form for a moment in the past (records brought from elsewhere): ordered by `millis`, then by `tag`,
// which also fills the random part, so that the same (millis, tag) always gives the same id.
std::string make_uuid_at(std::uint64_t millis, std::uint64_t tag);

// W3C Trace Context (https://www.w3.org/TR/trace-context/): a trace's id (32 lowercase hex digits) and a span's
// (16), random and never all zeros.
std::string make_trace_id();
std::string make_span_id();

// The fields of a `traceparent` header ("00-<trace id>-<parent span id>-<flags>"); nullopt when it is not a valid
// one, which the spec says to ignore (the call then starts a trace of its own). A later version's header is read
// by its first four fields.
struct TraceParent {
  std::string trace_id;
  std::string parent_id;
  std::string flags;
};
std::optional<TraceParent> parse_traceparent(std::string_view header);

}  // namespace faas
