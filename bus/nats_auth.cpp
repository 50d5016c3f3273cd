#include "bus/nats_auth.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <cstring>
#include <sstream>

#include "bus/nkey.hpp"
#include "schemas/ids.hpp"
#include "schemas/subjects.hpp"

namespace corral::bus {
namespace {

namespace subjects = wire::subjects;

std::string cat(std::initializer_list<std::string> parts) {
  std::string out;
  for (const auto& p : parts) out += p;
  return out;
}

// nats-server's configuration syntax: a double-quoted string (no escapes are needed for what
// corral writes: subjects, nkeys and names have neither quotes nor backslashes).
std::string quoted(const std::string& s) { return "\"" + s + "\""; }

void list(std::ostringstream& out, const char* key, const std::vector<std::string>& items) {
  if (items.empty()) return;
  out << key << ": [";
  for (std::size_t i = 0; i < items.size(); ++i) out << (i ? ", " : "") << quoted(items[i]);
  out << "]";
}

// Writes `text` to `path` atomically (temporary file, fsync, rename) with mode 0600.
bool write_file_atomically(const std::string& path, const std::string& text, std::string* error) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    if (error) *error = tmp + ": " + std::strerror(errno);
    return false;
  }
  bool ok = ::fchmod(fd, 0600) == 0;
  std::size_t done = 0;
  while (ok && done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<std::size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  const int e = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    if (error) *error = path + ": " + std::strerror(ok ? errno : e);
    ::unlink(tmp.c_str());
    return false;
  }
  return true;
}

// Holds an exclusive flock on DIR/identities.lock for its lifetime.
class registry_lock {
 public:
  explicit registry_lock(const std::string& dir) {
    fd_ = ::open((dir + "/identities.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ >= 0 && ::flock(fd_, LOCK_EX) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~registry_lock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }
  registry_lock(const registry_lock&) = delete;
  registry_lock& operator=(const registry_lock&) = delete;
  [[nodiscard]] bool held() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

bool ensure_private_dir(const std::string& dir, std::string* error) {
  std::string why = make_private_dir(dir);
  if (!why.empty() && error != nullptr) *error = why;
  return why.empty();
}

}  // namespace

std::string make_private_dir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return "cannot create " + dir + ": " + ec.message();
  char real[PATH_MAX];
  if (::realpath(dir.c_str(), real) == nullptr) return dir + ": " + std::strerror(errno);
  const uid_t me = ::geteuid();
  // Every directory on the way, from /: owned by root or us, and not writable by others unless
  // sticky (then the next one down must be ours or root's: checked in its turn).
  std::string at;
  const std::string path(real);
  std::size_t pos = 0;
  while (pos != std::string::npos) {
    const std::size_t next = path.find('/', pos + 1);
    at = path.substr(0, next == std::string::npos ? path.size() : next);
    if (at.empty()) at = "/";
    struct stat st {};
    if (::lstat(at.c_str(), &st) != 0) return at + ": " + std::strerror(errno);
    const bool last = next == std::string::npos;
    if (!S_ISDIR(st.st_mode)) return at + ": not a directory";
    if (st.st_uid != me && st.st_uid != 0)
      return at + " belongs to another user (uid " + std::to_string(st.st_uid) +
             "): corral's data would be theirs to change";
    if (last && st.st_uid != me) return at + ": not ours";
    if (!last && (st.st_mode & 022) != 0 && (st.st_mode & S_ISVTX) == 0)
      return at + ": others may write to it: corral's data below it would be theirs to replace";
    pos = next;
  }
  if (::chmod(real, 0700) != 0) return std::string(real) + ": chmod 0700: " + std::strerror(errno);
  return {};
}

const char* to_string(nats_role r) noexcept {
  switch (r) {
    case nats_role::admin: return "admin";
    case nats_role::executor: return "executor";
    case nats_role::gateway: return "gateway";
    case nats_role::tenant: return "tenant";
  }
  return "unknown";
}

std::optional<nats_role> nats_role_from(const std::string& s) {
  for (auto r : {nats_role::admin, nats_role::executor, nats_role::gateway, nats_role::tenant})
    if (s == to_string(r)) return r;
  return std::nullopt;
}

std::string invalid_identity_name(nats_role role, const std::string& name) {
  if (!wire::valid_token(name)) return "a name is 1..64 characters of [A-Za-z0-9_-]: " + name;
  if (role == nats_role::tenant && subjects::reserved_tenant(name))
    return "'" + name + "' is reserved by the protocol and cannot name a tenant";
  return {};
}

subject_permissions permissions_of(const nats_identity& id) {
  subject_permissions p;
  const std::string v1(subjects::prefix);
  switch (id.role) {
    case nats_role::admin:
    case nats_role::executor:
      p.publish_allow = {">"};
      p.subscribe_allow = {">"};
      break;
    case nats_role::gateway:
      p.publish_allow = {v1 + ".>"};
      p.publish_deny = {v1 + ".*.sbx.*.out.>", v1 + ".*.results.>", v1 + ".node.>"};
      p.subscribe_allow = {std::string(subjects::gateway_inbox_prefix) + ".>",
                           v1 + ".*.sbx.*.out.>"};
      break;
    case nats_role::tenant: {
      // In its own account nothing of anyone else exists; these keep a tenant's mistakes (and
      // probes) visible as permission errors rather than silence.
      const std::string& t = id.name;
      p.publish_allow = {cat({v1, ".", t, ".>"})};
      p.publish_deny = {cat({v1, ".", t, ".sbx.*.out.>"}), cat({v1, ".", t, ".results.>"})};
      p.subscribe_allow = {"_INBOX.>", cat({v1, ".", t, ".sbx.*.out.>"}),
                           cat({v1, ".", t, ".results.>"})};
      break;
    }
  }
  return p;
}

namespace {

// The request subjects a tenant may send to CORRAL, below corral.v1.{t}, each with what the
// server must keep for its answers. nats-server keeps a reply mapping per request that crosses
// an import: a singleton mapping goes with the first answer (or at the threshold, for a long
// poll that is answered late), a streamed one only when the threshold passes with no answer
// (each answer restarts it). A 15-minute streamed threshold on everything let one tenant pin
// about 0.7 KB of the server's memory per request for 15 minutes; so only the subjects answered
// several times (scatter/gather, replays, pages of results) are streamed, with short thresholds.
struct service_family {
  const char* suffix;
  bool streamed;
  const char* threshold;
};
constexpr service_family service_families[] = {
    // The ops of its sandboxes, one answer each (not their output: 7 tokens). `wait` is a long
    // poll: the executor answers it within max_wait_ms (actors/config.hpp), before 15m.
    {".sbx.*.info", false, "15m"},   {".sbx.*.terminate", false, "15m"},
    {".sbx.*.wait", false, "15m"},   {".sbx.*.tags", false, "15m"},
    {".sbx.*.exec", false, "15m"},   {".sbx.*.stdin", false, "15m"},
    {".sbx.*.signal", false, "15m"}, {".sbx.*.resize", false, "15m"},
    {".sbx.*.fs.*", false, "15m"},   // their file operations
    {".pool.*.*", false, "15m"},     // creates and runs in a pool
    {".node.*.*", false, "15m"},     // creates placed on one executor
    {".jobs.*", false, "1m"},        // publishing jobs: the stream's ack (nothing else answers)
    // Answered several times: a replay's frames and its end, every executor's part of a list,
    // a setup or a usage report, a results read's messages and its end.
    {".sbx.*.replay", true, "30s"},  {".list", true, "5s"},
    {".usage", true, "5s"},          {".setup.jobs", true, "30s"},
    {".read.results", true, "30s"},
};

}  // namespace

std::vector<std::string> tenant_service_imports(const std::string& t) {
  const std::string own = cat({std::string(subjects::prefix), ".", t});
  std::vector<std::string> out;
  for (const auto& f : service_families) out.push_back(own + f.suffix);
  return out;
}

std::vector<std::string> tenant_stream_imports(const std::string& t) {
  const std::string own = cat({std::string(subjects::prefix), ".", t});
  return {own + ".sbx.*.out.>",   // its execs' output
          own + ".results.*"};    // its results as they are stored (live)
}

namespace {

void user(std::ostringstream& out, const nats_identity& id, const char* indent) {
  const auto p = permissions_of(id);
  out << indent << "# " << to_string(id.role) << " " << id.name << "\n"
      << indent << "{nkey: " << quoted(id.public_key) << ", permissions: {publish: {";
  list(out, "allow", p.publish_allow);
  if (!p.publish_deny.empty()) out << ", ";
  list(out, "deny", p.publish_deny);
  out << "}, subscribe: {";
  list(out, "allow", p.subscribe_allow);
  if (!p.subscribe_deny.empty()) out << ", ";
  list(out, "deny", p.subscribe_deny);
  out << "}}}\n";
}

}  // namespace

std::string accounts_config(const std::vector<nats_identity>& ids,
                            const std::string& extra_corral_users) {
  const std::string v1(subjects::prefix);
  std::ostringstream out;
  out << "# Written by corral (bus/nats_auth.cpp) from the registry beside it: do not edit.\n"
      << "accounts {\n"
      << "  " << corral_account << ": {\n"
      << "    jetstream: enabled\n"
      << "    users: [\n";
  for (const auto& id : ids)
    if (id.role != nats_role::tenant) user(out, id, "      ");
  out << extra_corral_users << "    ]\n"
      << "    exports: [\n";
  // A tenant's requests, answered by executors (or JetStream, for its jobs).
  for (const auto& f : service_families)
    out << "      {service: " << quoted(v1 + ".*" + f.suffix)
        << ", response_type: " << (f.streamed ? "stream" : "singleton")
        << ", response_threshold: " << quoted(f.threshold) << "}\n";
  out << "      {stream: " << quoted(v1 + ".*.sbx.*.out.>") << "}\n"
      << "      {stream: " << quoted(v1 + ".*.results.*") << "}\n"
      << "    ]\n"
      << "  }\n";
  for (const auto& id : ids) {
    if (id.role != nats_role::tenant) continue;
    out << "  " << quoted(tenant_account(id.name)) << ": {\n    users: [\n";
    user(out, id, "      ");
    out << "    ]\n    imports: [\n";
    for (const auto& s : tenant_service_imports(id.name))
      out << "      {service: {account: " << corral_account << ", subject: " << quoted(s) << "}}\n";
    for (const auto& s : tenant_stream_imports(id.name))
      out << "      {stream: {account: " << corral_account << ", subject: " << quoted(s) << "}}\n";
    out << "    ]\n  }\n";
  }
  out << "}\n";
  return out.str();
}

std::string tenant_account(const std::string& tenant) { return "tenant-" + tenant; }

std::string nats_auth_dir::seed_file(nats_role role, const std::string& name) const {
  return dir_ + "/" + to_string(role) + "-" + name + ".nk";
}

std::optional<std::vector<nats_identity>> nats_auth_dir::identities(std::string* error) const {
  std::vector<nats_identity> out;
  const std::string path = dir_ + "/identities";
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) return out;
    if (error) *error = path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid() ||
      (st.st_mode & 022) != 0) {
    ::close(fd);
    if (error) *error = path + ": not a regular file of ours that only we may write";
    return std::nullopt;
  }
  std::string text;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  std::istringstream lines(text);
  std::string line;
  int number = 0;
  while (std::getline(lines, line)) {
    ++number;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string role, name, key;
    fields >> role >> name >> key;
    auto r = nats_role_from(role);
    if (!r || !invalid_identity_name(*r, name).empty() || !valid_user_public_key(key)) {
      if (error) *error = path + ":" + std::to_string(number) + ": not \"role name public_key\"";
      return std::nullopt;
    }
    out.push_back({*r, name, key});
  }
  return out;
}

bool nats_auth_dir::render_locked(const std::vector<nats_identity>& ids, std::string* error) {
  std::ostringstream registry;
  registry << "# corral's NATS identities: role name public_key (see bus/nats_auth.hpp)\n";
  for (const auto& id : ids)
    registry << to_string(id.role) << " " << id.name << " " << id.public_key << "\n";
  return write_file_atomically(dir_ + "/identities", registry.str(), error) &&
         write_file_atomically(auth_conf(), accounts_config(ids), error);
}

bool nats_auth_dir::render(std::string* error) {
  if (!ensure_private_dir(dir_, error)) return false;
  registry_lock lock(dir_);
  if (!lock.held()) {
    if (error) *error = dir_ + "/identities.lock: " + std::strerror(errno);
    return false;
  }
  auto ids = identities(error);
  return ids && render_locked(*ids, error);
}

bool nats_auth_dir::remove(nats_role role, const std::string& name, bool* removed,
                           std::string* error) {
  if (removed) *removed = false;
  if (!ensure_private_dir(dir_, error)) return false;
  registry_lock lock(dir_);
  if (!lock.held()) {
    if (error) *error = dir_ + "/identities.lock: " + std::strerror(errno);
    return false;
  }
  auto ids = identities(error);
  if (!ids) return false;
  std::vector<nats_identity> kept;
  for (auto& id : *ids)
    if (id.role != role || id.name != name) kept.push_back(std::move(id));
  const bool found = kept.size() != ids->size();
  if (!render_locked(kept, error)) return false;
  // Its seed goes too: a later identity of the same name gets a new key, never this one back.
  const std::string file = seed_file(role, name);
  if (::unlink(file.c_str()) != 0 && errno != ENOENT) {
    if (error) *error = file + ": " + std::strerror(errno);
    return false;
  }
  if (removed) *removed = found;
  return true;
}

std::optional<std::string> nats_auth_dir::ensure(nats_role role, const std::string& name,
                                                 bool* created, std::string* error) {
  if (created) *created = false;
  if (std::string why = invalid_identity_name(role, name); !why.empty()) {
    if (error) *error = why;
    return std::nullopt;
  }
  if (!ensure_private_dir(dir_, error)) return std::nullopt;
  registry_lock lock(dir_);
  if (!lock.held()) {
    if (error) *error = dir_ + "/identities.lock: " + std::strerror(errno);
    return std::nullopt;
  }
  auto ids = identities(error);
  if (!ids) return std::nullopt;
  const std::string file = seed_file(role, name);
  for (const auto& id : *ids) {
    if (id.role != role || id.name != name) continue;
    // Known: its seed file must be there and match (a lost seed file is an operator's problem to
    // solve knowingly, e.g. by removing the line; never silently replaced).
    auto key = read_user_nkey_file(file, error);
    if (!key) return std::nullopt;
    if (key->public_key != id.public_key) {
      if (error) *error = file + ": does not match the registry's key for this identity";
      return std::nullopt;
    }
    return file;
  }
  // A seed file without its registry line (a writer stopped between the two) is adopted.
  std::optional<user_nkey> key;
  if (::access(file.c_str(), F_OK) == 0) {
    key = read_user_nkey_file(file, error);
    if (!key) return std::nullopt;
  } else {
    key = generate_user_nkey(error);
    if (!key || !write_user_nkey_file(file, *key, error)) return std::nullopt;
  }
  ids->push_back({role, name, key->public_key});
  if (!render_locked(*ids, error)) return std::nullopt;
  if (created) *created = true;
  return file;
}

}  // namespace corral::bus
