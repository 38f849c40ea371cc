// grpc_bench: the gRPC load generator and echo server of bench/grpc_load.sh.
//
//   grpc_bench echo PORT
//       a bare libfaas.v1.Faas on the same gRPC library: Invoke answers a fixed record at once, InvokeStream three
//       chunks and the record. The ceiling faas-grpc is compared with.
//   grpc_bench load HOST:PORT invoke|stream FUNCTION SECONDS IN_FLIGHT [PASSWORD]
//       keeps IN_FLIGHT calls going for SECONDS on one channel (gRPC's callback API), then prints one line:
//       "<calls> calls in <s> s = <rate>/s p50 <ms> ms p99 <ms> ms errors <n>".
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <openssl/evp.h>

#include "libfaas/v1/faas.grpc.pb.h"

namespace {

namespace v1 = ::libfaas::v1;
using Clock = std::chrono::steady_clock;

void fill_record(v1::Record& record) {
  record.set_id("00000000-0000-4000-8000-000000000000");
  record.set_function("add");
  record.set_status("success");
  record.set_result_json("3");
  record.set_json(R"({"id":"00000000-0000-4000-8000-000000000000","function":"add","status":"success","result":3})");
}

class EchoStream final : public grpc::ServerWriteReactor<v1::InvokeEvent> {
 public:
  EchoStream() { next(); }
  void OnWriteDone(bool ok) override {
    if (!ok) return Finish(grpc::Status::CANCELLED);
    next();
  }
  void OnDone() override { delete this; }

 private:
  void next() {
    event_.Clear();
    if (sent_ < 3) {
      event_.mutable_chunk()->set_index(++sent_);
      event_.mutable_chunk()->set_data_json(std::to_string(sent_));
    } else if (sent_ == 3) {
      ++sent_;
      fill_record(*event_.mutable_record());
    } else {
      return Finish(grpc::Status::OK);
    }
    StartWrite(&event_);
  }
  v1::InvokeEvent event_;
  unsigned sent_ = 0;
};

class Echo final : public v1::Faas::CallbackService {
  grpc::ServerUnaryReactor* Invoke(grpc::CallbackServerContext* context, const v1::InvokeRequest*,
                                   v1::Record* reply) override {
    fill_record(*reply);
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  grpc::ServerWriteReactor<v1::InvokeEvent>* InvokeStream(grpc::CallbackServerContext*,
                                                          const v1::InvokeRequest*) override {
    return new EchoStream();
  }
};

int echo(const std::string& port) {
  Echo service;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:" + port, grpc::InsecureServerCredentials());
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  if (!server) return 1;
  std::fprintf(stderr, "listening on 127.0.0.1:%s\n", port.c_str());
  server->Wait();
  return 0;
}

// What every call in flight reports to.
struct Load {
  std::unique_ptr<v1::Faas::Stub> stub;
  v1::InvokeRequest request;
  std::string authorization;
  Clock::time_point until;
  std::mutex mutex;
  std::condition_variable finished;
  std::vector<double> latencies_ms;  // of successful calls
  unsigned errors = 0;
  unsigned running = 0;  // slots still calling

  std::unique_ptr<grpc::ClientContext> context() const {
    auto context = std::make_unique<grpc::ClientContext>();
    if (!authorization.empty()) context->AddMetadata("authorization", authorization);
    return context;
  }
  // Records one call; false when the slot should stop.
  bool done(Clock::time_point started, bool ok) {
    auto now = Clock::now();
    std::lock_guard lock(mutex);
    if (ok) {
      latencies_ms.push_back(std::chrono::duration<double, std::milli>(now - started).count());
    } else {
      ++errors;
    }
    if (now < until) return true;
    if (--running == 0) finished.notify_all();
    return false;
  }
};

// One slot of unary calls: each answer starts the next call.
class UnarySlot {
 public:
  explicit UnarySlot(Load& load) : load_(load) {}
  void start() {
    context_ = load_.context();
    reply_.Clear();
    started_ = Clock::now();
    load_.stub->async()->Invoke(context_.get(), &load_.request, &reply_, [this](grpc::Status status) {
      if (load_.done(started_, status.ok() && reply_.status() == "success")) start();
    });
  }

 private:
  Load& load_;
  std::unique_ptr<grpc::ClientContext> context_;
  v1::Record reply_;
  Clock::time_point started_;
};

// One slot of streamed calls: reads every event, and its end starts the next call.
class StreamSlot final : public grpc::ClientReadReactor<v1::InvokeEvent> {
 public:
  explicit StreamSlot(Load& load) : load_(load) {}
  void start() {
    context_ = load_.context();
    got_record_ = false;
    started_ = Clock::now();
    load_.stub->async()->InvokeStream(context_.get(), &load_.request, this);
    StartRead(&event_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    if (event_.has_record()) got_record_ = event_.record().status() == "success";
    StartRead(&event_);
  }
  void OnDone(const grpc::Status& status) override {
    if (load_.done(started_, status.ok() && got_record_)) start();
  }

 private:
  Load& load_;
  std::unique_ptr<grpc::ClientContext> context_;
  v1::InvokeEvent event_;
  bool got_record_ = false;
  Clock::time_point started_;
};

int load(const std::string& target, const std::string& rpc, const std::string& function, double seconds,
         unsigned in_flight, const std::string& password) {
  Load load;
  load.stub = v1::Faas::NewStub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  load.request.set_function(function);
  load.request.set_args_json(rpc == "invoke" ? "[1, 2]" : "[]");
  if (!password.empty()) {
    std::string in = "admin:" + password;
    std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
    out.resize(static_cast<std::size_t>(EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                                        reinterpret_cast<const unsigned char*>(in.data()),
                                                        static_cast<int>(in.size()))));
    load.authorization = "Basic " + out;
  }
  auto started = Clock::now();
  load.until = started + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  load.running = in_flight;
  std::vector<std::unique_ptr<UnarySlot>> unary;
  std::vector<std::unique_ptr<StreamSlot>> streams;
  for (unsigned i = 0; i < in_flight; ++i) {
    if (rpc == "invoke") {
      unary.push_back(std::make_unique<UnarySlot>(load));
      unary.back()->start();
    } else {
      streams.push_back(std::make_unique<StreamSlot>(load));
      streams.back()->start();
    }
  }
  std::unique_lock lock(load.mutex);
  load.finished.wait(lock, [&] { return load.running == 0; });
  double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
  auto& latencies = load.latencies_ms;
  std::sort(latencies.begin(), latencies.end());
  auto at = [&](double q) { return latencies.empty() ? 0.0 : latencies[static_cast<std::size_t>(q * (latencies.size() - 1))]; };
  std::printf("%zu calls in %.1f s = %.0f/s p50 %.3f ms p99 %.3f ms errors %u\n", latencies.size(), elapsed,
              static_cast<double>(latencies.size()) / elapsed, at(0.5), at(0.99), load.errors);
  return load.errors == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 2 && args[0] == "echo") return echo(args[1]);
  if ((args.size() == 6 || args.size() == 7) && args[0] == "load" && (args[2] == "invoke" || args[2] == "stream")) {
    return load(args[1], args[2], args[3], std::stod(args[4]), static_cast<unsigned>(std::stoul(args[5])),
                args.size() == 7 ? args[6] : std::string());
  }
  std::fprintf(stderr, "usage: grpc_bench echo PORT\n"
                       "       grpc_bench load HOST:PORT invoke|stream FUNCTION SECONDS IN_FLIGHT [PASSWORD]\n");
  return 2;
}
