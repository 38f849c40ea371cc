#!/usr/bin/env bash
# Installs the Debian 12 packages libfaas needs to build, test and run; skips what is already there.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  python3 python3-dev python3-venv python3-pip
  pybind11-dev nlohmann-json3-dev libboost-dev
  libpaho-mqttpp-dev libpaho-mqtt-dev libssl-dev
  libsqlite3-dev libsqlitecpp-dev
  libpq-dev postgresql haproxy  # cluster mode (--store postgresql://...) and its tests
  libgtest-dev libgmock-dev libbenchmark-dev
  libspdlog-dev libcli11-dev
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc  # faas-grpc
  libcoap3-dev libcoap3-bin  # faas-coap (coap-client for its tests)
  libseccomp-dev util-linux  # the workers' sandbox (its seccomp filter; setpriv for the tests' non-root server)
  mosquitto mosquitto-clients
  python3-pytest python3-requests python3-paho-mqtt
  python3-prometheus-client  # the tests parse /metrics with it
  python3-grpcio python3-protobuf  # the tests' gRPC client
  curl wrk
  clang libclang-rt-14-dev   # the libFuzzer targets (scripts/fuzz.sh)
  openssl                    # certificates for the MQTT TLS test
  chromium                   # the dashboard's browser test (tests/browser, with Node.js below)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

# Node.js and npm for playwright-core; a Node.js from elsewhere (e.g. NodeSource, which bundles npm) will do.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi

if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
