#pragma once
// NATS user keys ("nkeys": Ed25519 key pairs in NATS's text encoding) for corral's identities
// (docs/security.md, "NATS identities"). The server's configuration names a user by its public
// key ("U..."); the client proves it holds the matching seed ("SU...") by signing the nonce the
// server sends at every (re)connect. Only the client ever holds the seed.
//
// A seed file holds the seed alone on its first non-blank line, the format nats.go
// (nats.NkeyOptionFromSeed), the nats CLI (--nkey) and nats.py (nkeys_seed) read. corral writes
// it with mode 0600 and refuses to read one that its group or others may read.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace corral::bus {

struct user_nkey {
  std::string seed;        // "SU" + 56 more characters: the secret
  std::string public_key;  // "U" + 55 more characters: what the server's configuration names
};

// A new random key pair (the kernel's randomness). Nullopt with *error on failure.
[[nodiscard]] std::optional<user_nkey> generate_user_nkey(std::string* error);

// Decodes a user seed (surrounding whitespace ignored): checks its encoding, its prefix and its
// checksum, and derives the public key. Nullopt with *error when it is not a user seed.
[[nodiscard]] std::optional<user_nkey> user_nkey_from_seed(std::string_view seed,
                                                           std::string* error);

// Signs `message` with the seed's Ed25519 key (the 64-byte signature nats-server verifies
// against the public key). False when the seed does not decode.
[[nodiscard]] bool sign_with_seed(std::string_view seed, std::string_view message,
                                  std::vector<uint8_t>* signature);

// True if `key` is a well-formed user public key ("U...", checksum correct).
[[nodiscard]] bool valid_user_public_key(std::string_view key);

// Reads a seed file. Refused (nullopt, *error) when it is missing, unreadable, may be read by
// its group or others, or holds no user seed.
[[nodiscard]] std::optional<user_nkey> read_user_nkey_file(const std::string& path,
                                                           std::string* error);

// Writes key.seed to `path` with mode 0600: a new file, written to a temporary name in the same
// directory, fsynced and renamed into place (an existing file is never overwritten: false with
// *error). Durable when it returns true.
[[nodiscard]] bool write_user_nkey_file(const std::string& path, const user_nkey& key,
                                        std::string* error);

}  // namespace corral::bus
