#include "store/postgres.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace faas::store::pg {

namespace {

// SQLSTATE classes that say the server, not the statement, is at fault: the store is unavailable for now.
bool server_unavailable(const PGresult* result) {
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  if (state == nullptr) return true;  // no answer at all: the connection broke
  std::string_view code(state);
  return code.starts_with("08")       // connection exception
         || code.starts_with("53")    // insufficient resources (disk full, too many connections)
         || code.starts_with("57P")   // the server is shutting down or starting
         || code == "40001" || code == "40P01"  // serialization failure, deadlock: try again
         || code == "25006";          // read-only transaction (a standby)
}

std::string first_line(const char* message) {
  std::string text = message ? message : "";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (auto newline = text.find('\n'); newline != std::string::npos) text.resize(newline);
  return text;
}

}  // namespace

Connection::Connection(std::string uri) : uri_(std::move(uri)) {
  conn_ = connect();
  if (PQstatus(conn_) != CONNECTION_OK) {
    auto reason = first_line(PQerrorMessage(conn_));
    PQfinish(conn_);
    conn_ = nullptr;
    throw Error(ErrorCode::store_unavailable, "cannot connect to PostgreSQL at " + redact(uri_) + ": " + reason);
  }
}

PGconn* Connection::connect() const {
  // libpq waits for a server without end by default: a store that does not answer must fail in time. The URI
  // comes after, so that a connect_timeout of its own wins.
  const char* keywords[] = {"connect_timeout", "dbname", nullptr};
  const char* values[] = {"5", uri_.c_str(), nullptr};
  return PQconnectdbParams(keywords, values, 1);
}

Connection::~Connection() {
  if (conn_) PQfinish(conn_);
}

bool Connection::lost() const { return conn_ == nullptr || PQstatus(conn_) != CONNECTION_OK; }

bool Connection::reconnect() {
  if (!lost()) return true;
  if (conn_ == nullptr) {
    conn_ = connect();
  } else {
    PQreset(conn_);
  }
  if (PQstatus(conn_) == CONNECTION_OK) {
    spdlog::info("reconnected to PostgreSQL at {}", redact(uri_));
    return true;
  }
  return false;
}

Result Connection::exec(const char* what, const std::string& sql, std::initializer_list<Param> params) {
  return exec(what, sql, std::vector<Param>(params));
}

Result Connection::exec(const char* what, const std::string& sql, const std::vector<Param>& params) {
  // libpq reads text parameters up to their NUL: each needs a terminated copy.
  std::vector<std::string> copies;
  copies.reserve(params.size());
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& param : params) {
    if (!param) {
      values.push_back(nullptr);
      continue;
    }
    copies.emplace_back(*param);
    values.push_back(copies.back().c_str());
  }
  return exec_values(what, sql, values);
}

Result Connection::exec_values(const char* what, const std::string& sql, const std::vector<const char*>& values) {
  if (!reconnect()) {
    throw Error(ErrorCode::store_unavailable, std::string(what) + ": PostgreSQL at " + redact(uri_) +
                                                  " is unreachable: " + first_line(PQerrorMessage(conn_)));
  }
  Result result(PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr,
                             nullptr, 0));
  auto status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return result;
  fail(what, result.get());
}

void Connection::fail(const char* what, const PGresult* result) {
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  last_state_ = state ? state : "";
  auto message = std::string(what) + ": " + first_line(result ? PQresultErrorMessage(result) : PQerrorMessage(conn_));
  if (lost() || server_unavailable(result)) throw Error(ErrorCode::store_unavailable, message);
  throw Error(ErrorCode::internal, message);
}

void Connection::copy_in(const char* what, const std::string& sql, const std::string& data) {
  if (!reconnect()) throw Error(ErrorCode::store_unavailable, std::string(what) + ": PostgreSQL is unreachable");
  Result started(PQexec(conn_, sql.c_str()));
  if (!started || PQresultStatus(started.get()) != PGRES_COPY_IN) fail(what, started.get());
  // In pieces: a batch of large records may pass what an int counts.
  constexpr std::size_t piece = 1 << 20;
  bool sent = true;
  for (std::size_t at = 0; sent && at < data.size(); at += piece) {
    sent = PQputCopyData(conn_, data.data() + at, static_cast<int>(std::min(piece, data.size() - at))) == 1;
  }
  sent = sent && PQputCopyEnd(conn_, nullptr) == 1;
  // The COPY's own result, then nothing: read both even when sending failed, to leave the connection usable.
  Result done(PQgetResult(conn_));
  while (Result extra{PQgetResult(conn_)}) {
  }
  if (!sent) fail(what, nullptr);
  if (!done || PQresultStatus(done.get()) != PGRES_COMMAND_OK) fail(what, done.get());
}

void Connection::exec_script(const char* what, const std::string& sql) {
  if (!reconnect()) throw Error(ErrorCode::store_unavailable, std::string(what) + ": PostgreSQL is unreachable");
  Result result(PQexec(conn_, sql.c_str()));
  auto status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return;
  fail(what, result.get());
}

std::uint64_t Connection::changed(const Result& result) {
  const char* count = PQcmdTuples(result.get());
  std::uint64_t value = 0;
  std::from_chars(count, count + std::strlen(count), value);
  return value;
}

std::string text(const Result& result, int row, int column) {
  return std::string(PQgetvalue(result.get(), row, column),
                     static_cast<std::size_t>(PQgetlength(result.get(), row, column)));
}

bool is_null(const Result& result, int row, int column) { return PQgetisnull(result.get(), row, column) != 0; }

std::int64_t integer(const Result& result, int row, int column) {
  const char* value = PQgetvalue(result.get(), row, column);
  std::int64_t out = 0;
  std::from_chars(value, value + PQgetlength(result.get(), row, column), out);
  return out;
}

double number(const Result& result, int row, int column) {
  return std::strtod(PQgetvalue(result.get(), row, column), nullptr);
}

}  // namespace faas::store::pg
