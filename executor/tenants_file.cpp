#include "executor/tenants_file.hpp"

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "schemas/ids.hpp"

namespace corral {

namespace {
constexpr auto check_interval = std::chrono::seconds(1);

bool parse_u64(const std::string& v, uint64_t& out) {
  if (v.empty() || v.size() > 19) return false;
  char* end = nullptr;
  const unsigned long long x = std::strtoull(v.c_str(), &end, 10);
  if (end == v.c_str() || *end != '\0' || v[0] == '-') return false;
  out = x;
  return true;
}
}  // namespace

tenants_file::tenants_file(std::string path, tenant_quota defaults)
    : path_(std::move(path)), defaults_(defaults), star_(defaults) {}

bool tenants_file::apply(const std::string& settings, tenant_quota& q, std::string* why) {
  std::istringstream words(settings);
  std::string word;
  tenant_quota out = q;
  while (words >> word) {
    if (word[0] == '#') break;
    const auto eq = word.find('=');
    if (eq == std::string::npos) {
      if (why) *why = "not key=value: " + word;
      return false;
    }
    const std::string key = word.substr(0, eq), value = word.substr(eq + 1);
    uint64_t n = 0;
    const bool number = parse_u64(value, n);
    auto bad = [&] {
      if (why) *why = "bad value for " + key + ": " + value;
      return false;
    };
    if (key == "sandboxes") {
      if (!number || n > 1'000'000) return bad();
      out.sandboxes = static_cast<uint32_t>(n);
    } else if (key == "cpu_millis") {
      if (!number) return bad();
      out.cpu_millis = n;
    } else if (key == "memory_mib") {
      if (!number) return bad();
      out.memory_mib = n;
    } else if (key == "stored_output_mib") {
      if (!number || n > (1ULL << 40)) return bad();
      out.stored_output_bytes = n << 20;
    } else if (key == "sandbox_stored_output_mib") {
      if (!number || n > (1ULL << 40)) return bad();
      out.sandbox_stored_output_bytes = n << 20;
    } else if (key == "sandbox_exec_record_mib") {
      if (!number || n > (1ULL << 40)) return bad();
      out.sandbox_exec_record_bytes = n << 20;
    } else if (key == "execs_per_second") {
      char* end = nullptr;
      const double d = std::strtod(value.c_str(), &end);
      if (end == value.c_str() || *end != '\0') return bad();
      out.execs_per_second = d;
    } else if (key == "exec_burst") {
      if (!number || n > 1'000'000) return bad();
      out.exec_burst = static_cast<uint32_t>(n);
    }
    // Other keys belong to other components (the gateway's): not ours to judge.
  }
  if (std::string e = out.validate(); !e.empty()) {
    if (why) *why = e;
    return false;
  }
  q = out;
  return true;
}

void tenants_file::reload_if_changed_locked() const {
  const auto now = std::chrono::steady_clock::now();
  if (last_check_ != std::chrono::steady_clock::time_point{} && now - last_check_ < check_interval)
    return;
  last_check_ = now;
  struct stat st {};
  if (path_.empty() || ::stat(path_.c_str(), &st) != 0) {
    star_ = defaults_;
    by_tenant_.clear();
    size_ = -1;
    return;
  }
  if (st.st_size == size_ && st.st_ino == inode_ && st.st_mtim.tv_sec == mtime_.tv_sec &&
      st.st_mtim.tv_nsec == mtime_.tv_nsec)
    return;
  std::ifstream in(path_);
  if (!in) return;  // keep what we had
  std::string line;
  tenant_quota star = defaults_;
  std::map<std::string, std::string> lines;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    std::istringstream words(line);
    std::string tenant;
    if (!(words >> tenant) || tenant[0] == '#') continue;
    std::string rest;
    std::getline(words, rest);
    if (tenant == "*") {
      std::string why;
      if (!apply(rest, star, &why))
        std::cerr << "corral-executor: " << path_ << ":" << number << ": " << why << "; ignored\n";
    } else if (wire::valid_token(tenant)) {
      lines[tenant] = rest;
    }
  }
  std::map<std::string, tenant_quota> fresh;
  for (const auto& [tenant, rest] : lines) {
    tenant_quota q = star;
    std::string why;
    if (apply(rest, q, &why))
      fresh[tenant] = q;
    else
      std::cerr << "corral-executor: " << path_ << ": tenant " << tenant << ": " << why
                << "; the defaults apply\n";
  }
  star_ = star;
  by_tenant_ = std::move(fresh);
  size_ = st.st_size;
  inode_ = st.st_ino;
  mtime_ = st.st_mtim;
}

tenant_quota tenants_file::quota_of(const std::string& tenant) const {
  std::lock_guard<std::mutex> lock(mu_);
  reload_if_changed_locked();
  auto it = by_tenant_.find(tenant);
  return it == by_tenant_.end() ? star_ : it->second;
}

}  // namespace corral
