#pragma once
// A sandbox as the sandbox verbs print it: a table line, the info block, and its JSON object
// (field names are part of the CLI's interface: docs/cli.md).
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

}  // namespace corral::cli
