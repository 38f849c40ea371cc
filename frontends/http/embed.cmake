# Turns a file into a C++ source defining `extern const std::string_view NAME` in namespace faas::http.
# Usage: cmake -DINPUT=file -DOUTPUT=file.cpp -DNAME=symbol -P embed.cmake
file(READ "${INPUT}" content HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${content}")
file(WRITE "${OUTPUT}" "// Generated from ${INPUT} by embed.cmake; do not edit.\n#include <string_view>\n"
  "namespace faas::http {\nnamespace {\nconst unsigned char ${NAME}_bytes[] = {${bytes}0};\n}\n"
  "extern const std::string_view ${NAME};\n"
  "const std::string_view ${NAME}(reinterpret_cast<const char*>(${NAME}_bytes), sizeof ${NAME}_bytes - 1);\n}\n")
