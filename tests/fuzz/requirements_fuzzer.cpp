// libFuzzer target for the requirements.txt checker (libfaas/src/envs/requirements.cpp), which reads what
// clients upload before pip ever sees it. Accepted text must hold no pip option but --hash, no URL, no path; a
// refusal must be invalid_input. Anything else, or a crash or sanitizer report, is a finding.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "envs/requirements.hpp"
#include "faas/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    faas::envs::check_requirements(text);
  } catch (const faas::Error& e) {
    if (e.code() != faas::ErrorCode::invalid_input) std::abort();
    return 0;
  }
  // Accepted: line by line, what pip would act on is a plain specifier.
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    auto line = text.substr(start, end - start);
    start = end + 1;
    // pip's comments: '#' at the start of a line or after a space or tab.
    for (auto hash = line.find('#'); hash != std::string_view::npos; hash = line.find('#', hash + 1)) {
      if (hash == 0 || line[hash - 1] == ' ' || line[hash - 1] == '\t') {
        line = line.substr(0, hash);
        break;
      }
    }
    if (line.find("://") != std::string_view::npos || line.find('@') != std::string_view::npos ||
        line.find('/') != std::string_view::npos) {
      std::abort();
    }
    auto first = line.find_first_not_of(" \t");
    if (first != std::string_view::npos && line[first] == '-' && !line.substr(first).starts_with("--hash=")) {
      std::abort();
    }
  }
  return 0;
}
