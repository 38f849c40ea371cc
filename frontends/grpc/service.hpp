// service.hpp — the libfaas.v1.Faas service (libfaas/v1/faas.proto, docs/grpc.md) over the engine.
//
// It uses gRPC's callback API: no thread waits on a call. Invocations go through Engine::invoke_async and finish
// on the engine's thread; uploads, deletes and reads of the database run on a small pool of their own, so the
// gRPC threads never wait on Python, pip or the disk.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include <boost/asio/thread_pool.hpp>
#include <grpcpp/grpcpp.h>

#include "auth.hpp"
#include "faas/engine.hpp"
#include "libfaas/v1/faas.grpc.pb.h"

namespace faas::grpc_frontend {

namespace v1 = ::libfaas::v1;

struct GrpcConfig {
  std::string host = "0.0.0.0";
  unsigned short port = 50051;
  bool public_invoke = false;          // Invoke and InvokeStream without credentials
  std::string user = "admin";
  std::string password;                // never empty once main() has run
  std::string tls_cert, tls_key;       // PEM files; both empty: plaintext
  std::size_t max_message_bytes = 16 * 1024 * 1024;
  unsigned blocking_threads = 4;       // uploads (pip), deletes, reads of the database
  std::chrono::milliseconds shutdown_grace{std::chrono::seconds(5)};
};

// The engine's error codes as gRPC status codes (docs/grpc.md).
grpc::StatusCode status_code(ErrorCode code) noexcept;

// How long a call with `remaining` time before its deadline lets its function run: a little less, so that the
// record is back before the deadline (zero or less: no time left).
std::chrono::milliseconds deadline_timeout(std::chrono::milliseconds remaining) noexcept;

class Service final : public v1::Faas::CallbackService {
 public:
  Service(Engine& engine, const GrpcConfig& config);
  ~Service() override;  // waits for the admin calls running

  grpc::ServerUnaryReactor* Invoke(grpc::CallbackServerContext* context, const v1::InvokeRequest* request,
                                   v1::Record* reply) override;
  grpc::ServerWriteReactor<v1::InvokeEvent>* InvokeStream(grpc::CallbackServerContext* context,
                                                          const v1::InvokeRequest* request) override;
  grpc::ServerUnaryReactor* Upload(grpc::CallbackServerContext* context, const v1::UploadRequest* request,
                                   v1::FunctionInfo* reply) override;
  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* context, const v1::ListRequest* request,
                                 v1::ListReply* reply) override;
  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* context, const v1::DeleteRequest* request,
                                   v1::DeleteReply* reply) override;
  grpc::ServerWriteReactor<v1::Record>* Logs(grpc::CallbackServerContext* context,
                                             const v1::LogsRequest* request) override;
  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* context, const v1::StatusRequest* request,
                                   v1::StatusReply* reply) override;

 private:
  bool is_admin(const grpc::CallbackServerContext& context) const;
  // The engine's request for an Invoke or InvokeStream, its deadline applied. Throws Error(invalid_input).
  InvokeRequest invoke_request(const grpc::CallbackServerContext& context, const v1::InvokeRequest& request) const;
  // Whether the caller may invoke `function`: an admin, or a public function.
  bool may_invoke(const grpc::CallbackServerContext& context, const std::string& function) const;
  // The request of an Invoke or InvokeStream the caller may make, or nullopt after `refuse` got why not.
  std::optional<InvokeRequest> take_call(grpc::CallbackServerContext& context, const v1::InvokeRequest& request,
                                         const std::function<void(grpc::Status)>& refuse) const;
  // Runs `run` with the call now, or on the blocking pool when it names a kept version.
  void run_call(InvokeRequest call, std::function<void(InvokeRequest)> run);
  // Runs `work` on the blocking pool and finishes the call with its status (an Error thrown: the mapped code).
  grpc::ServerUnaryReactor* offload(grpc::CallbackServerContext* context, std::function<void()> work);

  Engine& engine_;
  const GrpcConfig& config_;
  frontend::BasicAuth auth_;
  boost::asio::thread_pool blocking_;
};

}  // namespace faas::grpc_frontend
