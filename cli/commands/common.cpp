// What every verb shares: the connection, help and usage errors, argument values.
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "cli/commands/command.hpp"
#include "cli/up.hpp"

namespace corral::cli {

client::session::config context::tenant_config() const {
  client::session::config c = cfg;
  if (!creds_given) {
    // `corral up`'s own layout, from the directory it was started in.
    const std::string local = up_layout{"var"}.tenant_seed_file(c.tenant);
    if (::access(local.c_str(), F_OK) == 0) c.nats_creds = local;
  }
  return c;
}

client::session* context::connect() {
  if (client_) return client_.get();
  const client::session::config c = tenant_config();
  std::string error;
  client_ = client::session::connect(c, &error);
  if (!client_) std::cerr << "corral: cannot reach NATS at " << c.nats_url << ": " << error << "\n";
  return client_.get();
}

std::shared_ptr<bus::connection> context::connect_operator() {
  bus::options o;
  o.urls = {cfg.nats_url};
  o.name = "corral-cli";
  o.delivery_pool_threads = 0;
  o.nkey_seed_file = cfg.nats_creds;
  if (!creds_given) {
    const std::string local = up_layout{"var"}.operator_seed_file();
    if (::access(local.c_str(), F_OK) == 0) o.nkey_seed_file = local;
  }
  o.tls_ca_file = cfg.nats_ca;
  std::string error;
  std::shared_ptr<bus::connection> conn = bus::connection::connect(o, &error);
  if (!conn) std::cerr << "corral: cannot reach NATS at " << cfg.nats_url << ": " << error << "\n";
  return conn;
}

void print_help(const verb& v) {
  std::cout << "usage: corral " << v.name << (v.synopsis.empty() ? "" : " ") << v.synopsis
            << "\n\n" << v.summary << "\n";
  if (!v.help.empty()) std::cout << "\n" << v.help;
}

int usage_error(const verb& v, const std::string& why) {
  std::cerr << "corral: " << v.name << ": " << why << "\nusage: corral " << v.name
            << (v.synopsis.empty() ? "" : " ") << v.synopsis << "\n(corral " << v.name
            << " --help tells more)\n";
  return exit_usage;
}

int fail(const status& e) {
  std::cerr << "corral: " << wire::to_string(e.code) << ": " << e.message << "\n";
  return exit_failed;
}

int fail(const std::string& message) {
  std::cerr << "corral: " << message << "\n";
  return exit_failed;
}

bool parse_pair(const std::string& s, std::pair<std::string, std::string>& out) {
  auto eq = s.find('=');
  if (eq == std::string::npos || eq == 0) return false;
  out = {s.substr(0, eq), s.substr(eq + 1)};
  return true;
}

bool parse_seconds(const std::string& s, int64_t& ms) {
  constexpr double max_seconds = 1e9;
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(s.c_str(), &end);
  if (errno != 0 || end == s.c_str() || *end != '\0' || !(v >= 0) || v > max_seconds) return false;
  ms = static_cast<int64_t>(v * 1000);
  return true;
}

bool parse_uint(const std::string& s, uint32_t& out) {
  char* end = nullptr;
  errno = 0;
  unsigned long v = std::strtoul(s.c_str(), &end, 10);
  if (errno != 0 || end == s.c_str() || *end != '\0' || v > 0xffffffffUL) return false;
  out = static_cast<uint32_t>(v);
  return true;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool arg_reader::next() {
  if (separator_) return false;
  ++i_;
  if (i_ >= args_.size()) return false;
  if (args_[i_] == "--") {
    separator_ = true;
    return false;
  }
  return true;
}

bool arg_reader::value(std::string& out) {
  if (i_ + 1 >= args_.size()) return false;
  out = args_[++i_];
  return true;
}

bool arg_reader::positional() const {
  const auto& a = args_[i_];
  return a.empty() || a[0] != '-' || a == "-";
}

args_t arg_reader::rest() const {
  if (!separator_) return {};
  return args_t(args_.begin() + static_cast<std::ptrdiff_t>(i_) + 1, args_.end());
}

void print_json(const nlohmann::ordered_json& doc) {
  std::cout << doc.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
}

}  // namespace corral::cli
