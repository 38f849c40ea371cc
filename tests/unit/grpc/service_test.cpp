// faas-grpc's mappings: engine errors to status codes, a call's deadline to its timeout.
#include <gtest/gtest.h>

#include "service.hpp"

namespace {

using namespace faas;
using std::chrono::milliseconds;

TEST(GrpcService, MapsEveryEngineErrorToAStatus) {
  EXPECT_EQ(grpc_frontend::status_code(ErrorCode::invalid_name), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(grpc_frontend::status_code(ErrorCode::invalid_input), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(grpc_frontend::status_code(ErrorCode::not_found), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(grpc_frontend::status_code(ErrorCode::build_failed), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(grpc_frontend::status_code(ErrorCode::overloaded), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(grpc_frontend::status_code(ErrorCode::shutting_down), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(grpc_frontend::status_code(ErrorCode::store_unavailable), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(grpc_frontend::status_code(ErrorCode::internal), grpc::StatusCode::INTERNAL);
}

TEST(GrpcService, LeavesTheRecordTimeToComeBackBeforeTheDeadline) {
  EXPECT_EQ(grpc_frontend::deadline_timeout(milliseconds(1000)), milliseconds(950));    // a twentieth
  EXPECT_EQ(grpc_frontend::deadline_timeout(milliseconds(60000)), milliseconds(59900));  // at most 100 ms
  EXPECT_EQ(grpc_frontend::deadline_timeout(milliseconds(50)), milliseconds(45));        // at least 5 ms
  EXPECT_LE(grpc_frontend::deadline_timeout(milliseconds(3)).count(), 0);                // no time left
}

}  // namespace
