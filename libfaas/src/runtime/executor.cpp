// The executor seam: what is shared by every executor, and the factory that picks one.
#include "runtime/executor.hpp"

#include "faas/error.hpp"
#include "runtime/inprocess_executor.hpp"
#include "runtime/process_executor.hpp"

namespace faas::runtime {

void take_request(Call& call) {
  Invocation& record = call.record;
  record.function = std::move(call.request.function);  // not the spec's name: a pinned version's is name@N
  record.version = call.function->version;
  record.trigger = std::move(call.request.trigger);
  record.attempt = call.request.attempt;
  record.request_id = std::move(call.request.request_id);
  record.args = std::move(call.request.args);
  record.kwargs = std::move(call.request.kwargs);
}

std::unique_ptr<Executor> make_executor(Isolation isolation, const ExecutorOptions& options, CallSink sink) {
  if (isolation == Isolation::process) return std::make_unique<ProcessExecutor>(options, std::move(sink));
  return std::make_unique<InProcessExecutor>(options, std::move(sink));
}

}  // namespace faas::runtime
