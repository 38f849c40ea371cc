// A libpq connection as the PostgreSQL store uses it: statements with text parameters, results owned by RAII,
// failures as Error — store_unavailable when the server cannot be reached (the next use reconnects), internal for
// anything else — and the text forms PostgreSQL's arrays and schema need.
#pragma once

#include <libpq-fe.h>

#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "faas/error.hpp"
#include "store/postgres_text.hpp"

namespace faas::store::pg {

struct ResultDeleter {
  void operator()(PGresult* result) const noexcept { PQclear(result); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

// A text parameter; nullopt is SQL NULL.
using Param = std::optional<std::string_view>;

class Connection {
 public:
  // Connects at once; throws Error(store_unavailable) naming the server when it cannot.
  explicit Connection(std::string uri);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs one statement (parameters $1..$n) and returns its result (rows or a command's). Reconnects first when
  // the connection was lost. Throws Error: store_unavailable when the server is unreachable or refuses for lack
  // of resources, internal for an error of the statement itself. `what` begins the message.
  Result exec(const char* what, const std::string& sql, std::initializer_list<Param> params = {});
  Result exec(const char* what, const std::string& sql, const std::vector<Param>& params);
  // The same with NUL-terminated values (nullptr: NULL), which are not copied.
  Result exec_values(const char* what, const std::string& sql, const std::vector<const char*>& values);
  // COPY ... FROM STDIN with `data` (COPY's text format, see CopyText).
  void copy_in(const char* what, const std::string& sql, const std::string& data);
  // The SQLSTATE of the last statement that failed ("23505": a unique key taken), or "".
  const std::string& last_state() const { return last_state_; }
  // Runs several statements without parameters (a schema).
  void exec_script(const char* what, const std::string& sql);
  // Rows a command changed (INSERT, UPDATE, DELETE).
  static std::uint64_t changed(const Result& result);
  // Ensures a live connection (reconnecting if needed); false when the server cannot be reached.
  bool reconnect();
  bool lost() const;
  PGconn* raw() { return conn_; }
  const std::string& uri() const { return uri_; }

 private:
  PGconn* connect() const;

  // Throws the Error for a failed `result` (store_unavailable when the server is to blame).
  [[noreturn]] void fail(const char* what, const PGresult* result);

  std::string uri_;
  PGconn* conn_ = nullptr;
  std::string last_state_;
};

// Column `column` of row `row` as text ("" for NULL).
std::string text(const Result& result, int row, int column);
bool is_null(const Result& result, int row, int column);
std::int64_t integer(const Result& result, int row, int column);
double number(const Result& result, int row, int column);

}  // namespace faas::store::pg
