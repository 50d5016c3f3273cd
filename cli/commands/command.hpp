#pragma once
// The verbs of the `corral` command line: one file per verb (cli/commands/*.cpp), each defining
// one `verb` — its name, its synopsis, its help and its run function — listed in the table of
// cli/commands/table.cpp that main.cpp dispatches on. Every verb answers `--help` with its own
// help (before any "--"), and a usage error with its synopsis (exit status 2).
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "client/client.hpp"

namespace corral::cli {

// The client library's types, as the verbs use them.
using client::create_options;
using client::exec_options;
using client::exec_result;
using client::format_age;
using client::fs_entry_view;
using client::fs_reply_view;
using client::sandbox_usage_view;
using client::sandbox_view;
using client::usage_amount;
using client::usage_report;

// Exit statuses of the command line itself (an exec's own status is the process's: see
// exec_status in cli/commands/exec_io.hpp).
inline constexpr int exit_ok = 0;
inline constexpr int exit_failed = 1;  // a request failed, or the sweep left programs without result
inline constexpr int exit_usage = 2;   // a usage error

using args_t = std::vector<std::string>;

// What every verb is run with: the global options, and the connection, made on first use.
class context {
 public:
  client::session::config cfg;
  bool creds_given = false;  // --nats-creds or CORRAL_NATS_CREDS
  const char* argv0 = "corral";

  // cfg with the tenant's credentials: cfg.nats_creds, else the tenant's seed in ./var/auth
  // (`corral up`'s layout, from the directory it was started in) when it exists.
  [[nodiscard]] client::session::config tenant_config() const;
  // The tenant's client (tenant_config()), connected on the first call. Null after printing
  // why it could not connect.
  client::session* connect();
  // The operator's connection (node verbs): cfg.nats_creds when given, else ./var/auth's admin
  // seed when it exists. Null after printing why.
  std::shared_ptr<bus::connection> connect_operator();

 private:
  std::unique_ptr<client::session> client_;
};

struct verb {
  std::string_view name;      // "sandbox create"
  std::string_view synopsis;  // what follows the name in a usage line
  std::string_view summary;   // one line (at most ~75 characters), in `corral --help`
  std::string_view help;      // the options and the output, after the usage line
  int (*run)(context&, const args_t& args);
};

// Every verb, in the order `corral --help` lists them.
[[nodiscard]] const std::vector<const verb*>& verbs();

// `corral VERB --help`: the verb's usage line and help, on stdout.
void print_help(const verb& v);
// A usage error: "corral: VERB: why", the usage line and a pointer to --help, on stderr.
// Returns exit_usage.
int usage_error(const verb& v, const std::string& why);
// A failed request: "corral: CODE: message" on stderr. Returns exit_failed.
int fail(const status& e);
// Any other failure: "corral: message" on stderr. Returns exit_failed.
int fail(const std::string& message);

// Argument values.
[[nodiscard]] bool parse_pair(const std::string& s, std::pair<std::string, std::string>& out);
[[nodiscard]] bool parse_seconds(const std::string& s, int64_t& ms);
[[nodiscard]] bool parse_uint(const std::string& s, uint32_t& out);
[[nodiscard]] int64_t now_ms();

// Walks a verb's arguments: flags with or without a value, and positional words.
//   arg_reader r(args);
//   while (r.next()) { if (r.is("--name")) { if (!r.value(name)) ...; } else if (r.positional()) ... }
class arg_reader {
 public:
  explicit arg_reader(const args_t& args) : args_(args) {}
  // Moves to the next argument; false at the end (or after "--": rest() is what follows it).
  bool next();
  [[nodiscard]] const std::string& arg() const { return args_[i_]; }
  [[nodiscard]] bool is(std::string_view flag) const { return args_[i_] == flag; }
  // The flag's value (the next argument); false when there is none.
  bool value(std::string& out);
  // A word that is not a flag.
  [[nodiscard]] bool positional() const;
  // What follows "--", when it was seen.
  [[nodiscard]] args_t rest() const;
  [[nodiscard]] bool saw_separator() const { return separator_; }

 private:
  const args_t& args_;
  std::size_t i_ = static_cast<std::size_t>(-1);
  bool separator_ = false;
};

// A --json output: one document on stdout (invalid UTF-8 replaced).
void print_json(const nlohmann::ordered_json& doc);

}  // namespace corral::cli
