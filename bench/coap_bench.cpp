// coap_bench: the CoAP load generator and echo server of bench/coap_load.sh, both on libcoap.
//
//   coap_bench echo PORT [separate]
//       a bare libcoap server: POST /function/{name} answers a fixed record at once (piggybacked on the ACK), the
//       ceiling faas-coap is compared with; or, with `separate`, as a separate response (an empty ACK first, then
//       the answer in a confirmable message of its own), as a server does whose answer is not ready in the
//       handler (libcoap's async).
//   coap_bench load PORT FUNCTION SECONDS IN_FLIGHT
//       IN_FLIGHT sessions (each its own UDP port) on 127.0.0.1 send confirmable POST /function/FUNCTION with
//       {"args": [1, 2]}, each the next as soon as the last is answered, for SECONDS; then prints one line:
//       "<calls> calls in <s> s = <rate>/s p50 <ms> ms p99 <ms> ms errors <n>". A 4.01 with an Echo option (an
//       address check) is answered by repeating the request with it, as a CoAP client does.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <coap3/coap.h>

namespace {

using Clock = std::chrono::steady_clock;

const char* const record =
    R"({"id":"00000000-0000-4000-8000-000000000000","function":"add","version":1,"args":[1,2],"result":3,)"
    R"("status":"success","time_start":"2026-01-01 00:00:00.000000","time_end":"2026-01-01 00:00:00.000010",)"
    R"("duration_ms":0.01,"request_id":"00000000-0000-4000-8000-000000000001","stdout":""})";

coap_address_t loopback(unsigned short port) {
  coap_address_t address;
  coap_address_init(&address);
  address.addr.sin.sin_family = AF_INET;
  address.addr.sin.sin_port = htons(port);
  address.addr.sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.size = sizeof(address.addr.sin);
  return address;
}

void answer_record(coap_pdu_t* response) {
  coap_pdu_set_code(response, COAP_RESPONSE_CODE_CONTENT);
  std::uint8_t format[4];
  coap_add_option(response, COAP_OPTION_CONTENT_FORMAT,
                  coap_encode_var_safe(format, sizeof format, COAP_MEDIATYPE_APPLICATION_JSON), format);
  coap_add_data(response, std::strlen(record), reinterpret_cast<const std::uint8_t*>(record));
}

int echo(unsigned short port, bool separate) {
  coap_startup();
  coap_set_log_level(LOG_ERR);
  coap_context_t* context = coap_new_context(nullptr);
  auto address = loopback(port);
  if (context == nullptr || coap_new_endpoint(context, &address, COAP_PROTO_UDP) == nullptr) return 1;
  coap_resource_t* unknown = coap_resource_unknown_init2(
      [](coap_resource_t*, coap_session_t*, const coap_pdu_t*, const coap_string_t*, coap_pdu_t*) {}, 0);
  if (separate) {
    coap_register_request_handler(
        unknown, COAP_REQUEST_POST,
        [](coap_resource_t*, coap_session_t* session, const coap_pdu_t* request, const coap_string_t*,
           coap_pdu_t* response) {
          if (coap_find_async(session, coap_pdu_get_token(request)) != nullptr) return answer_record(response);
          coap_async_trigger(coap_register_async(session, request, 0));  // answered in the next loop turn
        });
  } else {
    coap_register_request_handler(
        unknown, COAP_REQUEST_POST,
        [](coap_resource_t*, coap_session_t*, const coap_pdu_t*, const coap_string_t*, coap_pdu_t* response) {
          answer_record(response);
        });
  }
  coap_add_resource(context, unknown);
  std::fprintf(stderr, "listening on 127.0.0.1:%u\n", port);
  while (true) coap_io_process(context, 1000);
}

struct Load {
  std::string function;
  Clock::time_point until;
  std::vector<double> latencies_ms;
  unsigned errors = 0;
  unsigned running = 0;
};

struct Slot {
  Load* load;
  Clock::time_point started;
};

void send_request(coap_session_t* session, const std::string* echo = nullptr) {
  auto* slot = static_cast<Slot*>(coap_session_get_app_data(session));
  coap_pdu_t* pdu = coap_new_pdu(COAP_MESSAGE_CON, COAP_REQUEST_CODE_POST, session);
  std::uint8_t token[8];
  std::size_t length = 0;
  coap_session_new_token(session, &length, token);
  coap_add_token(pdu, length, token);
  coap_add_option(pdu, COAP_OPTION_URI_PATH, 8, reinterpret_cast<const std::uint8_t*>("function"));
  coap_add_option(pdu, COAP_OPTION_URI_PATH, slot->load->function.size(),
                  reinterpret_cast<const std::uint8_t*>(slot->load->function.data()));
  if (echo != nullptr) {
    coap_add_option(pdu, COAP_OPTION_ECHO, echo->size(), reinterpret_cast<const std::uint8_t*>(echo->data()));
  }
  static const char body[] = R"({"args": [1, 2]})";
  coap_add_data(pdu, sizeof body - 1, reinterpret_cast<const std::uint8_t*>(body));
  if (echo == nullptr) slot->started = Clock::now();
  coap_send(session, pdu);
}

coap_response_t on_response(coap_session_t* session, const coap_pdu_t*, const coap_pdu_t* received, coap_mid_t) {
  auto* slot = static_cast<Slot*>(coap_session_get_app_data(session));
  Load& load = *slot->load;
  const auto code = coap_pdu_get_code(received);
  if (code == COAP_RESPONSE_CODE_UNAUTHORIZED) {
    coap_opt_iterator_t options;
    if (coap_opt_t* echo = coap_check_option(received, COAP_OPTION_ECHO, &options)) {
      std::string value(reinterpret_cast<const char*>(coap_opt_value(echo)), coap_opt_length(echo));
      send_request(session, &value);  // the address check: not a call of its own
      return COAP_RESPONSE_OK;
    }
  }
  auto now = Clock::now();
  if (code == COAP_RESPONSE_CODE_CONTENT) {
    load.latencies_ms.push_back(std::chrono::duration<double, std::milli>(now - slot->started).count());
  } else {
    ++load.errors;
  }
  if (now < load.until) {
    send_request(session);
  } else {
    --load.running;
  }
  return COAP_RESPONSE_OK;
}

int load(unsigned short port, const std::string& function, double seconds, unsigned in_flight) {
  coap_startup();
  coap_set_log_level(LOG_ERR);
  coap_context_t* context = coap_new_context(nullptr);
  coap_context_set_block_mode(context, COAP_BLOCK_USE_LIBCOAP | COAP_BLOCK_SINGLE_BODY);
  coap_register_response_handler(context, on_response);
  coap_register_nack_handler(context, [](coap_session_t* session, const coap_pdu_t*, coap_nack_reason_t,
                                         coap_mid_t) {
    auto* slot = static_cast<Slot*>(coap_session_get_app_data(session));
    ++slot->load->errors;
    --slot->load->running;  // this session gives up
  });
  Load load;
  load.function = function;
  auto server = loopback(port);
  std::vector<Slot> slots(in_flight);
  std::vector<coap_session_t*> sessions;
  auto started = Clock::now();
  load.until = started + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  for (auto& slot : slots) {
    slot.load = &load;
    coap_session_t* session = coap_new_client_session(context, nullptr, &server, COAP_PROTO_UDP);
    if (session == nullptr) return 1;
    coap_session_set_app_data(session, &slot);
    sessions.push_back(session);
    ++load.running;
    send_request(session);
  }
  while (load.running > 0) coap_io_process(context, 100);
  double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
  auto& latencies = load.latencies_ms;
  std::sort(latencies.begin(), latencies.end());
  auto at = [&](double q) {
    return latencies.empty() ? 0.0 : latencies[static_cast<std::size_t>(q * static_cast<double>(latencies.size() - 1))];
  };
  std::printf("%zu calls in %.1f s = %.0f/s p50 %.3f ms p99 %.3f ms errors %u\n", latencies.size(), elapsed,
              static_cast<double>(latencies.size()) / elapsed, at(0.5), at(0.99), load.errors);
  for (auto* session : sessions) coap_session_release(session);
  coap_free_context(context);
  return load.errors == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if ((args.size() == 2 || (args.size() == 3 && args[2] == "separate")) && args[0] == "echo") {
    return echo(static_cast<unsigned short>(std::stoul(args[1])), args.size() == 3);
  }
  if (args.size() == 5 && args[0] == "load") {
    return load(static_cast<unsigned short>(std::stoul(args[1])), args[2], std::stod(args[3]),
                static_cast<unsigned>(std::stoul(args[4])));
  }
  std::fprintf(stderr, "usage: coap_bench echo PORT [separate]\n       coap_bench load PORT FUNCTION SECONDS IN_FLIGHT\n");
  return 2;
}
