// Random identifiers for invocations and requests.
#pragma once

#include <string>

namespace faas {

// A random (version 4) UUID in its canonical 36-character form. Fast and thread-safe: each thread draws from its
// own generator seeded from the OS. Unique, not secret.
std::string make_uuid4();

}  // namespace faas
