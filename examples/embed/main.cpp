// Embeds libfaas in a C++ program: upload the calculator example, invoke it, read its log and the status.
//   faas-embed-example FUNCTION_DIR [DATA_DIR]
#include <faas/engine.hpp>

#include <fstream>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: " << argv[0] << " FUNCTION_DIR [DATA_DIR]\n";
    return 2;
  }
  std::ifstream source(std::string(argv[1]) + "/func.py");
  std::stringstream code;
  code << source.rdbuf();

  faas::EngineConfig config;
  config.data_dir = argc > 2 ? argv[2] : "faas-data";
  try {
    faas::Engine engine(config);
    auto info = engine.upload("calculadora", code.str());
    std::cout << "uploaded " << info.name << " v" << info.version << "\n";

    auto result = engine.invoke("calculadora", nlohmann::json::array({10, 20}));
    std::cout << "record: " << result.json << "\n";

    faas::InvokeRequest request;
    request.function = "calculadora";
    request.args = "[6, 7]";
    request.kwargs = R"({"op": "mul"})";
    std::cout << "6 * 7 = " << engine.invoke(request).record.result << "\n";

    std::cout << "records kept: " << engine.logs("calculadora", 0).size() << "\n";
    std::cout << "status: " << nlohmann::json(engine.status()).dump() << "\n";
  } catch (const faas::Error& e) {
    std::cerr << "error (" << faas::to_string(e.code()) << "): " << e.what() << "\n";
    return 1;
  }
  return 0;
}
