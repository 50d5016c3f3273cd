#include "client/sweep/program.hpp"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "client/sweep/options.hpp"
#include "client/sweep/text.hpp"

namespace corral::sweep {

namespace {

using json = nlohmann::json;
using detail::trim;

constexpr std::size_t max_id_bytes = 1024;
constexpr std::size_t max_entry_point_chars = 256;

// A name to call in the appended check(...): an identifier, possibly dotted.
bool valid_entry_point(const std::string& s) {
  if (s.empty() || s.size() > max_entry_point_chars) return false;
  bool start = true;
  for (char c : s) {
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$';
    const bool digit = c >= '0' && c <= '9';
    if (c == '.') {
      if (start) return false;
      start = true;
      continue;
    }
    if (!(letter || (digit && !start))) return false;
    start = false;
  }
  return !start;
}

// A text field of a problem line: absent (or null) is nullopt; another type is an error.
bool text_field(const json& j, const char* name, std::optional<std::string>& out, std::string* why) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return true;
  if (!it->is_string()) {
    *why = std::string(name) + ": must be a string";
    return false;
  }
  out = it->get<std::string>();
  return true;
}

}  // namespace

std::string line_id(std::size_t line) { return "line-" + std::to_string(line); }

parsed_line parse_line(std::string_view text, std::size_t line, int64_t default_timeout) {
  parsed_line out;
  text = trim(text);
  if (text.empty()) {
    out.blank = true;
    return out;
  }
  auto invalid = [&](std::string why) {
    out.error = std::move(why);
    return out;
  };
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalid("not valid JSON");
  if (!j.is_object()) return invalid("not a JSON object");

  // id, or HumanEval's task_id.
  auto id_it = j.find("id");
  if (id_it == j.end() || id_it->is_null()) id_it = j.find("task_id");
  if (id_it == j.end() || id_it->is_null()) return invalid("missing id (or task_id)");
  if (id_it->is_string()) out.id = id_it->get<std::string>();
  else if (id_it->is_number_integer()) out.id = id_it->dump();
  else return invalid("id: must be a string or an integer");
  if (out.id.empty()) return invalid("id: empty");
  if (out.id.size() > max_id_bytes) {
    out.id.clear();
    return invalid("id: longer than " + std::to_string(max_id_bytes) + " bytes");
  }

  std::string why;
  std::optional<std::string> language, source, prompt, completion, tests, test, entry_point,
      stdin_data, expected;
  if (!text_field(j, "language", language, &why) || !text_field(j, "source", source, &why) ||
      !text_field(j, "prompt", prompt, &why) || !text_field(j, "completion", completion, &why) ||
      !text_field(j, "tests", tests, &why) || !text_field(j, "test", test, &why) ||
      !text_field(j, "entry_point", entry_point, &why) ||
      !text_field(j, "stdin", stdin_data, &why) || !text_field(j, "expected", expected, &why))
    return invalid(why);

  program p;
  p.line = line;
  p.id = out.id;
  const std::string lang = language.value_or("python");
  if (lang == "python" || lang == "python3" || lang == "py") p.language = "python";
  else if (lang == "javascript" || lang == "js" || lang == "node") p.language = "javascript";
  else return invalid("language: \"" + lang + "\" is not python or javascript");

  std::string body;
  if (source && (prompt || completion))
    return invalid("give either source or prompt + completion, not both");
  if (source) body = *source;
  else if (completion) body = prompt.value_or("") + *completion;
  else if (prompt) return invalid("prompt without completion");
  else return invalid("missing source (or prompt + completion)");

  if (tests && test) return invalid("give either tests or test, not both");
  if (test) tests = std::move(test);
  if (entry_point) {
    if (!tests) return invalid("entry_point without tests");
    if (!valid_entry_point(*entry_point))
      return invalid("entry_point: \"" + *entry_point + "\" is not a name");
  }
  if (tests) {
    p.has_tests = true;
    // Python: a statement of its own between the program and the tests, so that nothing the
    // program leaves open at its end can reach into the tests: a completion ending in a decorator
    // line (`@lambda f: lambda *a: None`) would otherwise wrap the tests' own `def check` and pass
    // a wrong answer. Left open, it is now a SyntaxError.
    if (p.language == "python") body += "\npass  # the program ends here; the tests follow\n";
    body += "\n\n" + *tests + "\n";
    if (entry_point) body += "\ncheck(" + *entry_point + (p.language == "javascript" ? ");\n" : ")\n");
  }
  p.source = std::move(body);
  p.stdin_data = stdin_data.value_or("");
  p.expected = std::move(expected);

  p.timeout_ms = default_timeout;
  if (auto t = j.find("timeout"); t != j.end() && !t->is_null()) {
    if (!t->is_number()) return invalid("timeout: must be a number of seconds");
    const double s = t->get<double>();
    if (!(s > 0) || s > max_timeout_ms / 1000.0)
      return invalid("timeout: seconds, > 0 and at most " + std::to_string(max_timeout_ms / 1000));
    p.timeout_ms = std::max<int64_t>(1, std::llround(s * 1000));
  }
  if (p.source.size() + p.stdin_data.size() > max_program_bytes)
    return invalid("program and stdin larger than " + std::to_string(max_program_bytes) + " bytes");
  out.prog = std::move(p);
  return out;
}

}  // namespace corral::sweep
