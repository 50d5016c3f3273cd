#pragma once
// `corral fs ...`: file operations on a running sandbox (cat, write, ls, stat, mkdir, rm).
#include <string>
#include <vector>

#include "client/client.hpp"

namespace corral::cli {

extern const char* const fs_usage_text;

// Runs `corral fs ARGS...`. Exit status: 0 done, 1 a failed request (the error is printed as
// "corral: CODE: message"), 2 a usage error.
int run_fs_command(client::session& c, const std::vector<std::string>& args);

}  // namespace corral::cli
