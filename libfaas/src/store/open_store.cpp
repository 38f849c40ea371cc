#include "store/open_store.hpp"

#include "store/postgres.hpp"
#include "store/postgres_function_store.hpp"
#include "store/postgres_record_store.hpp"
#include "store/sqlite_function_store.hpp"
#include "store/sqlite_record_store.hpp"

namespace faas::store {

Stores open_stores(const EngineConfig& config, const std::string& node_id) {
  Stores stores;
  if (config.store.empty() || config.store == "sqlite") {
    auto db_file = config.data_dir / "faas.db";
    stores.functions = std::make_unique<SqliteFunctionStore>(db_file);
    stores.records = std::make_unique<SqliteRecordStore>(db_file, config.log_retention);
    return stores;
  }
  if (!pg::is_uri(config.store)) {
    throw Error(ErrorCode::invalid_input,
                "store must be 'sqlite' or a PostgreSQL URI (postgresql://user@host:port/database), not '" +
                    pg::redact(config.store) + "'");
  }
  stores.functions = std::make_unique<PostgresFunctionStore>(config.store);
  stores.records =
      std::make_unique<PostgresRecordStore>(config.store, config.log_retention, node_id, config.node_lease);
  stores.shared = true;
  return stores;
}

std::string describe_store(const std::string& store) {
  return store.empty() || store == "sqlite" ? "sqlite" : pg::redact(store);
}

}  // namespace faas::store
