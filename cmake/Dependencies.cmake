# Every dependency comes from a Debian 12 package (scripts/install-deps.sh installs them).

# Pin Debian's interpreter and libpython: a pyenv python3 usually comes first on PATH, and pybind11 would pick
# it up. This must run before find_package(pybind11).
set(FAAS_PYTHON "/usr/bin/python3" CACHE FILEPATH "Python 3.11 whose libpython the engine embeds")
set(Python3_EXECUTABLE "${FAAS_PYTHON}" CACHE FILEPATH "" FORCE)
find_package(Python3 3.11 EXACT REQUIRED COMPONENTS Interpreter Development.Embed Development.Module)
find_package(pybind11 2.10 CONFIG REQUIRED)

find_package(Threads REQUIRED)
find_package(OpenSSL REQUIRED)            # before Paho: its config uses OpenSSL::SSL without finding it
find_package(nlohmann_json 3.11 CONFIG REQUIRED)
find_package(SQLite3 REQUIRED)
find_package(SQLiteCpp CONFIG REQUIRED)   # target `SQLiteCpp` (static, no namespace)
find_package(PostgreSQL REQUIRED)         # libpq: the cluster store (PostgreSQL::PostgreSQL)
find_package(spdlog CONFIG REQUIRED)
find_package(Boost 1.74 CONFIG REQUIRED)  # Boost::headers: Asio and Beast
find_package(CLI11 CONFIG REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(SECCOMP REQUIRED IMPORTED_TARGET libseccomp)  # the sandbox's system-call filter
set(PAHO_WITH_SSL ON)  # for bench/mqtt_bench, the load generator. Debian's libpaho-mqttpp3 is built on the SSL variant of Paho C (paho-mqtt3as)
find_package(PahoMqttCpp CONFIG REQUIRED)
find_package(Protobuf REQUIRED)           # faas-grpc's messages
find_package(gRPC CONFIG REQUIRED)        # gRPC::grpc++, grpc++_reflection and grpc_cpp_plugin
pkg_check_modules(COAP REQUIRED IMPORTED_TARGET GLOBAL libcoap-3-openssl)  # faas-coap, with DTLS on OpenSSL
