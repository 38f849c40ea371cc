// JSON text <-> Python objects, exact and fast (no round trip through Python's json module).
//
//   object<->dict  array<->list (tuple->array)  string<->str  integer<->int (any size)  float<->float
//   true/false<->bool  null<->None
// A Python result that JSON cannot hold (a set, bytes, NaN, a non-string key that json.dumps would also refuse,
// nesting deeper than 256) is refused with a message naming the type. GIL required for everything here.
#pragma once

#include <Python.h>

#include <string>
#include <string_view>

#include <pybind11/pybind11.h>

namespace faas::runtime {

// Parses JSON text into a new Python object. Throws Error(invalid_input) when the text is not JSON.
pybind11::object json_to_python(std::string_view text);

// Appends `value` as JSON text to `out`. On failure returns false, leaves `out` unspecified and sets `error`.
// With a `limit` (bytes; 0 = none) it stops as soon as the text would grow past it, setting `too_large`, so a
// huge result costs no more memory than the limit.
bool python_to_json(PyObject* value, std::string& out, std::string& error, std::size_t limit = 0,
                    bool* too_large = nullptr);

}  // namespace faas::runtime
