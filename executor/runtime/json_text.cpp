#include "executor/runtime/json_text.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace corral::gvisor_detail {

void json_writer::separate() {
  if (need_comma_) out_ += ',';
  need_comma_ = false;
}

json_writer& json_writer::begin_object() {
  separate();
  out_ += '{';
  return *this;
}

json_writer& json_writer::end_object() {
  out_ += '}';
  need_comma_ = true;
  return *this;
}

json_writer& json_writer::begin_array() {
  separate();
  out_ += '[';
  return *this;
}

json_writer& json_writer::end_array() {
  out_ += ']';
  need_comma_ = true;
  return *this;
}

json_writer& json_writer::key(std::string_view k) {
  value(k);
  out_ += ':';
  need_comma_ = false;
  return *this;
}

json_writer& json_writer::value(std::string_view s) {
  separate();
  out_ += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out_ += "\\\""; break;
      case '\\': out_ += "\\\\"; break;
      case '\n': out_ += "\\n"; break;
      case '\r': out_ += "\\r"; break;
      case '\t': out_ += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out_ += buf;
        } else {
          out_ += static_cast<char>(c);
        }
    }
  }
  out_ += '"';
  need_comma_ = true;
  return *this;
}

json_writer& json_writer::value(int64_t n) {
  separate();
  out_ += std::to_string(n);
  need_comma_ = true;
  return *this;
}

json_writer& json_writer::value(uint64_t n) {
  separate();
  out_ += std::to_string(n);
  need_comma_ = true;
  return *this;
}

json_writer& json_writer::value(bool b) {
  separate();
  out_ += b ? "true" : "false";
  need_comma_ = true;
  return *this;
}

json_writer& json_writer::string_array(const std::vector<std::string>& items) {
  begin_array();
  for (const auto& s : items) value(s);
  return end_array();
}

const json_value* json_value::get(const std::string& k) const {
  if (type != kind::object) return nullptr;
  auto it = object.find(k);
  return it == object.end() ? nullptr : &it->second;
}

std::string json_value::get_string(const std::string& k) const {
  const json_value* v = get(k);
  return v != nullptr && v->type == kind::string ? v->string : std::string{};
}

std::optional<int64_t> json_value::get_int(const std::string& k) const {
  const json_value* v = get(k);
  if (v == nullptr || v->type != kind::number || !std::isfinite(v->number)) return std::nullopt;
  return static_cast<int64_t>(v->number);
}

namespace {

class parser {
 public:
  parser(std::string_view s, int max_depth) : s_(s), max_depth_(max_depth) {}

  bool parse(json_value& out) {
    if (!value(out, 0)) return false;
    skip_ws();
    return pos_ == s_.size();
  }

 private:
  void skip_ws() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' || s_[pos_] == '\t'))
      ++pos_;
  }

  bool literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  bool value(json_value& out, int depth) {
    if (depth > max_depth_) return false;
    skip_ws();
    if (pos_ >= s_.size()) return false;
    const char c = s_[pos_];
    if (c == '{') return object(out, depth);
    if (c == '[') return array(out, depth);
    if (c == '"') {
      out.type = json_value::kind::string;
      return string(out.string);
    }
    if (c == 't' || c == 'f') {
      out.type = json_value::kind::boolean;
      out.boolean = c == 't';
      return literal(c == 't' ? "true" : "false");
    }
    if (c == 'n') {
      out.type = json_value::kind::null;
      return literal("null");
    }
    return number(out);
  }

  bool number(json_value& out) {
    const std::size_t start = pos_;
    while (pos_ < s_.size()) {
      const char c = s_[pos_];
      if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E') {
        ++pos_;
      } else {
        break;
      }
    }
    if (pos_ == start || pos_ - start > 64) return false;
    const std::string text(s_.substr(start, pos_ - start));
    char* end = nullptr;
    out.number = std::strtod(text.c_str(), &end);
    out.type = json_value::kind::number;
    return end == text.c_str() + text.size();
  }

  static bool hex4(std::string_view s, uint32_t& cp) {
    cp = 0;
    for (char c : s) {
      cp <<= 4;
      if (c >= '0' && c <= '9') cp |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') cp |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') cp |= static_cast<uint32_t>(c - 'A' + 10);
      else return false;
    }
    return true;
  }

  static void utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  bool string(std::string& out) {
    ++pos_;  // opening quote
    while (pos_ < s_.size()) {
      const char c = s_[pos_++];
      if (c == '"') return true;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= s_.size()) return false;
      const char e = s_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = 0;
          if (pos_ + 4 > s_.size() || !hex4(s_.substr(pos_, 4), cp)) return false;
          pos_ += 4;
          utf8(out, cp);  // surrogate pairs are kept as two code points: good enough here
          break;
        }
        default: return false;
      }
    }
    return false;
  }

  bool array(json_value& out, int depth) {
    out.type = json_value::kind::array;
    ++pos_;
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      return true;
    }
    for (;;) {
      json_value item;
      if (!value(item, depth + 1)) return false;
      out.array.push_back(std::move(item));
      skip_ws();
      if (pos_ >= s_.size()) return false;
      if (s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (s_[pos_] == ']') {
        ++pos_;
        return true;
      }
      return false;
    }
  }

  bool object(json_value& out, int depth) {
    out.type = json_value::kind::object;
    ++pos_;
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return true;
    }
    for (;;) {
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != '"') return false;
      std::string k;
      if (!string(k)) return false;
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != ':') return false;
      ++pos_;
      json_value v;
      if (!value(v, depth + 1)) return false;
      out.object[std::move(k)] = std::move(v);
      skip_ws();
      if (pos_ >= s_.size()) return false;
      if (s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (s_[pos_] == '}') {
        ++pos_;
        return true;
      }
      return false;
    }
  }

  std::string_view s_;
  std::size_t pos_ = 0;
  int max_depth_;
};

}  // namespace

std::optional<json_value> parse_json(std::string_view text, std::size_t max_bytes,
                                     int max_depth) {
  if (text.size() > max_bytes) return std::nullopt;
  json_value v;
  parser p(text, max_depth);
  if (!p.parse(v)) return std::nullopt;
  return v;
}

}  // namespace corral::gvisor_detail
