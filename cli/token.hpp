#pragma once
// Gateway tokens: a random token whose sha256 (hex) and tenant are appended to the tokens file
// the gateway reads (created 0600). Only the hash is stored.
#include <optional>
#include <string>

namespace corral::cli {

// Returns the new token, or nullopt with *error set.
std::optional<std::string> create_token(const std::string& tenant, const std::string& file,
                                        std::string* error);

// Removes every token of `tenant` from the tokens file (rewritten atomically, 0600). Returns
// how many were removed, or nullopt with *error.
std::optional<std::size_t> remove_tokens(const std::string& tenant, const std::string& file,
                                         std::string* error);

}  // namespace corral::cli
