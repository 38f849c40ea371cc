#include "runtime/convert.hpp"

#include <charconv>
#include <cmath>
#include <vector>

#include <nlohmann/json.hpp>

#include "faas/error.hpp"
#include "util/json_text.hpp"

namespace py = pybind11;

namespace faas::runtime {

namespace {

constexpr std::size_t max_depth = 256;

// Builds Python objects straight from nlohmann's SAX events, without an intermediate tree.
class PythonBuilder : public nlohmann::json_sax<nlohmann::json> {
 public:
  py::object root;
  std::string error;

  bool null() override { return add(py::none()); }
  bool boolean(bool value) override { return add(py::bool_(value)); }
  bool number_integer(number_integer_t value) override { return add(steal(PyLong_FromLongLong(value))); }
  bool number_unsigned(number_unsigned_t value) override { return add(steal(PyLong_FromUnsignedLongLong(value))); }
  bool number_float(number_float_t value, const string_t& text) override {
    // nlohmann hands integers that overflow 64 bits to us as floats, with their text: keep them exact.
    if (text.find_first_of(".eE") == string_t::npos) return add(steal(PyLong_FromString(text.c_str(), nullptr, 10)));
    return add(steal(PyFloat_FromDouble(value)));
  }
  bool string(string_t& value) override {
    return add(steal(PyUnicode_DecodeUTF8(value.data(), static_cast<Py_ssize_t>(value.size()), "strict")));
  }
  bool binary(binary_t&) override { return fail("binary values are not JSON"); }
  bool start_object(std::size_t) override { return open(steal(PyDict_New())); }
  bool key(string_t& name) override {
    keys_.back() = steal(PyUnicode_DecodeUTF8(name.data(), static_cast<Py_ssize_t>(name.size()), "strict"));
    return static_cast<bool>(keys_.back()) || python_failed();
  }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(steal(PyList_New(0))); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) override {
    return fail("not valid JSON at byte " + std::to_string(position) + ": " + e.what());
  }

 private:
  static py::object steal(PyObject* object) { return py::reinterpret_steal<py::object>(object); }

  bool python_failed() {
    error = std::string("cannot convert argument: ") + py::error_already_set().what();
    return false;
  }
  bool fail(std::string message) {
    if (error.empty()) error = std::move(message);
    return false;
  }

  bool add(py::object value) {
    if (!value) return python_failed();
    if (containers_.empty()) {
      root = std::move(value);
      return true;
    }
    PyObject* container = containers_.back().ptr();
    int rc = PyList_Check(container) ? PyList_Append(container, value.ptr())
                                     : PyDict_SetItem(container, keys_.back().ptr(), value.ptr());
    return rc == 0 || python_failed();
  }

  bool open(py::object container) {
    if (containers_.size() >= max_depth) return fail("arguments are nested too deeply");
    if (!add(container)) return false;
    containers_.push_back(std::move(container));
    keys_.emplace_back();
    return true;
  }

  bool close() {
    containers_.pop_back();
    keys_.pop_back();
    return true;
  }

  std::vector<py::object> containers_;
  std::vector<py::object> keys_;
};

class JsonWriter {
 public:
  JsonWriter(std::string& out, std::string& error, std::size_t limit)
      : out_(out), error_(error), max_bytes_(limit), limit_(limit == 0 ? std::string::npos : out.size() + limit) {}

  bool too_large() const noexcept { return too_large_; }

  bool write(PyObject* value, std::size_t depth) {
    if (out_.size() > limit_) return over_limit();
    if (value == Py_None) {
      out_ += "null";
    } else if (value == Py_True) {
      out_ += "true";
    } else if (value == Py_False) {
      out_ += "false";
    } else if (PyLong_Check(value)) {
      return write_int(value);
    } else if (PyFloat_Check(value)) {
      return write_float(PyFloat_AS_DOUBLE(value));
    } else if (PyUnicode_Check(value)) {
      return write_string(value);
    } else if (PyList_Check(value) || PyTuple_Check(value)) {
      return write_sequence(value, depth);
    } else if (PyDict_Check(value)) {
      return write_dict(value, depth);
    } else {
      return fail(std::string("result is not JSON-serializable: object of type '") + Py_TYPE(value)->tp_name + "'");
    }
    return true;
  }

 private:
  bool fail(std::string message) {
    error_ = std::move(message);
    return false;
  }

  bool over_limit() {
    too_large_ = true;
    return fail("the result's JSON is larger than the limit of " + std::to_string(max_bytes_) + " bytes");
  }

 public:
  // After the last write: the final bytes may have gone past the limit.
  bool check_size() { return out_.size() <= limit_ || over_limit(); }

 private:

  bool python_failed(const char* what) {
    PyErr_Clear();
    return fail(what);
  }

  bool write_int(PyObject* value) {
    int overflow = 0;
    long long small = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow == 0) {
      if (small == -1 && PyErr_Occurred()) return python_failed("cannot read an int");
      char digits[24];
      auto [end, ec] = std::to_chars(digits, digits + sizeof digits, small);
      out_.append(digits, end);
      return true;
    }
    // Beyond 64 bits: int's own decimal form (not str(), which an int subclass such as IntEnum may override).
    py::object text = py::reinterpret_steal<py::object>(PyNumber_ToBase(value, 10));
    if (!text) return python_failed("cannot format an int");
    Py_ssize_t size = 0;
    const char* utf8 = PyUnicode_AsUTF8AndSize(text.ptr(), &size);
    if (utf8 == nullptr) return python_failed("cannot format an int");
    out_.append(utf8, static_cast<std::size_t>(size));
    return true;
  }

  bool write_float(double value) {
    if (!std::isfinite(value)) {
      return fail(std::string("result is not JSON-serializable: float ") +
                  (std::isnan(value) ? "nan" : value > 0 ? "inf" : "-inf"));
    }
    char* text = PyOS_double_to_string(value, 'r', 0, Py_DTSF_ADD_DOT_0, nullptr);  // repr(), as json.dumps
    if (text == nullptr) return python_failed("cannot format a float");
    out_ += text;
    PyMem_Free(text);
    return true;
  }

  bool write_string(PyObject* value) {
    // Checked before encoding: a huge non-ASCII str would otherwise be copied whole into UTF-8 first.
    if (out_.size() + static_cast<std::size_t>(PyUnicode_GET_LENGTH(value)) > limit_) return over_limit();
    Py_ssize_t size = 0;
    const char* utf8 = PyUnicode_AsUTF8AndSize(value, &size);
    if (utf8 == nullptr) return python_failed("result is not JSON-serializable: a str that is not valid Unicode");
    append_json_string(out_, std::string_view(utf8, static_cast<std::size_t>(size)));
    return true;
  }

  bool write_sequence(PyObject* value, std::size_t depth) {
    if (depth >= max_depth) return fail("result is nested too deeply (or refers to itself)");
    bool is_list = PyList_Check(value);
    Py_ssize_t size = is_list ? PyList_GET_SIZE(value) : PyTuple_GET_SIZE(value);
    out_.push_back('[');
    for (Py_ssize_t i = 0; i < size; ++i) {
      if (i > 0) out_.push_back(',');
      // A borrowed item stays alive only while the list is unchanged; hold it across the recursion.
      py::object item = py::reinterpret_borrow<py::object>(is_list ? PyList_GET_ITEM(value, i)
                                                                   : PyTuple_GET_ITEM(value, i));
      if (!write(item.ptr(), depth + 1)) return false;
      if (is_list) size = std::min(size, PyList_GET_SIZE(value));
    }
    out_.push_back(']');
    return true;
  }

  // Keys as json.dumps accepts them: str as is; int, float, bool and None as their JSON text in a string.
  bool write_key(PyObject* key) {
    if (PyUnicode_Check(key)) return write_string(key);
    if (key == Py_True || key == Py_False || key == Py_None) {
      out_ += key == Py_True ? "\"true\"" : key == Py_False ? "\"false\"" : "\"null\"";
      return true;
    }
    if (PyLong_Check(key) || PyFloat_Check(key)) {
      out_.push_back('"');
      if (!(PyLong_Check(key) ? write_int(key) : write_float(PyFloat_AS_DOUBLE(key)))) return false;
      out_.push_back('"');
      return true;
    }
    return fail(std::string("result is not JSON-serializable: dict keys must be str, int, float, bool or None, not '") +
                Py_TYPE(key)->tp_name + "'");
  }

  bool write_dict(PyObject* value, std::size_t depth) {
    if (depth >= max_depth) return fail("result is nested too deeply (or refers to itself)");
    out_.push_back('{');
    PyObject* key = nullptr;
    PyObject* item = nullptr;
    Py_ssize_t position = 0;
    bool first = true;
    py::object keep_alive = py::reinterpret_borrow<py::object>(value);
    while (PyDict_Next(value, &position, &key, &item)) {
      if (!first) out_.push_back(',');
      first = false;
      py::object held_key = py::reinterpret_borrow<py::object>(key);
      py::object held_item = py::reinterpret_borrow<py::object>(item);
      if (!write_key(held_key.ptr())) return false;
      out_.push_back(':');
      if (!write(held_item.ptr(), depth + 1)) return false;
    }
    out_.push_back('}');
    return true;
  }

  std::string& out_;
  std::string& error_;
  std::size_t max_bytes_;
  std::size_t limit_;  // out_.size() may not pass this
  bool too_large_ = false;
};

}  // namespace

py::object json_to_python(std::string_view text) {
  PythonBuilder builder;
  bool ok = nlohmann::json::sax_parse(text.begin(), text.end(), &builder, nlohmann::json::input_format_t::json, true);
  if (!ok || !builder.root) {
    throw Error(ErrorCode::invalid_input, builder.error.empty() ? "arguments are not valid JSON" : builder.error);
  }
  return std::move(builder.root);
}

bool python_to_json(PyObject* value, std::string& out, std::string& error, std::size_t limit, bool* too_large) {
  JsonWriter writer(out, error, limit);
  bool ok = writer.write(value, 0) && writer.check_size();
  if (too_large != nullptr) *too_large = writer.too_large();
  return ok;
}

}  // namespace faas::runtime
