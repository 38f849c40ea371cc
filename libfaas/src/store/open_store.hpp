// Opens the store an EngineConfig names: SQLite in the data dir, or a PostgreSQL server shared by a cluster.
#pragma once

#include <memory>
#include <string>

#include "faas/config.hpp"
#include "store/function_store.hpp"
#include "store/record_store.hpp"

namespace faas::store {

struct Stores {
  std::unique_ptr<FunctionStore> functions;
  std::unique_ptr<RecordStore> records;
  bool shared = false;  // PostgreSQL: other nodes use it too
};

// Throws Error(invalid_input) for a store that is neither "sqlite" nor a postgresql:// (or postgres://) URI, and
// Error(store_unavailable) with the reason when PostgreSQL cannot be reached.
Stores open_stores(const EngineConfig& config, const std::string& node_id);

// The URI without its password, for messages and logs.
std::string describe_store(const std::string& store);

}  // namespace faas::store
