// What a requirements.txt may say: requirement specifiers only (PEP 508 names, extras, version specifiers and
// environment markers, plus pip's --hash options). Anything that would make pip read another file, use another
// index, fetch a URL, or build a local folder (running its build backend as the server) is refused, since an
// upload's requirements come from a client and pip runs with the server's identity.
#pragma once

#include <string_view>

namespace faas::envs {

// Throws Error(invalid_input) naming the first line that is not a requirement specifier (1-based, as in the
// file) and why. Blank lines and comments are fine.
void check_requirements(std::string_view requirements);

}  // namespace faas::envs
