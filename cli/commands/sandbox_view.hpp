#pragma once
// A sandbox as the sandbox verbs print it: a table line, the info block, and its JSON object
// (field names are part of the CLI's interface: docs/cli.md).
#include <cstddef>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "client/client.hpp"
#include "cli/commands/command.hpp"

namespace corral::cli {

void print_sandbox_header();
void print_sandbox_line(const sandbox_view& v, int64_t now_ms);
void print_sandbox_info(const sandbox_view& v);
[[nodiscard]] nlohmann::ordered_json sandbox_json(const sandbox_view& v);

// The sandbox that "ID" or "--name NAME" at the front of args names (names are unique among
// the tenant's live sandboxes); *used: how many arguments that took. Nullopt after printing
// why (*rc: the exit status).
[[nodiscard]] std::optional<std::string> resolve_sandbox(const verb& v, client::session& c,
                                                         const args_t& args, std::size_t* used,
                                                         int* rc);

// What a verb about one sandbox starts with: the connection, and the sandbox the front of args
// names (resolve_sandbox); `used`: how many arguments that took. Nullopt after printing why
// (*rc: the exit status).
struct named_sandbox {
  client::session* session = nullptr;
  std::string id;
  std::size_t used = 0;
};
[[nodiscard]] std::optional<named_sandbox> open_sandbox(const verb& v, context& ctx,
                                                        const args_t& args, int* rc);

// True (and past it) when args[i] is a "--timeout S" that `sandbox info` and `sandbox rm`
// accept and ignore, as before the verbs had their own parsers.
[[nodiscard]] bool ignored_timeout(const args_t& args, std::size_t& i);

}  // namespace corral::cli
