#include "actors/validate.hpp"

namespace corral {

namespace {
field_error invalid(std::string field, std::string why) {
  return {wire::ErrorCode::invalid_argument, std::move(field), std::move(why)};
}
field_error too_large(std::string field, std::string why) {
  return {wire::ErrorCode::too_large, std::move(field), std::move(why)};
}
}  // namespace

field_error check_command(const node_config& cfg, const string_vector* argv,
                          const std::string& field, bool required) {
  if (argv == nullptr || argv->size() == 0)
    return required ? invalid(field, "the command is empty") : field_error{};
  if (argv->size() > cfg.max_argv_count) return too_large(field, "too many arguments");
  std::size_t total = 0;
  for (const auto* a : *argv) {
    if (a == nullptr) return invalid(field, "a null argument");
    total += a->size() + 1;
  }
  if (total > cfg.max_argv_bytes)
    return too_large(field, "over max_argv_bytes (" + std::to_string(cfg.max_argv_bytes) + ")");
  if (wire::str(argv->Get(0)).empty()) return invalid(field, "the program name is empty");
  return {};
}

field_error check_env(const node_config& cfg, const pair_vector* env) {
  if (env == nullptr) return {};
  if (env->size() > cfg.max_env_count) return too_large("env", "too many variables");
  std::size_t total = 0;
  for (const auto* kv : *env) {
    const auto k = wire::str(kv->key());
    if (k.empty() || k.find('=') != std::string_view::npos || k.find('\0') != std::string_view::npos)
      return invalid("env", "invalid variable name");
    total += k.size() + wire::str(kv->value()).size() + 2;
  }
  if (total > cfg.max_env_bytes)
    return too_large("env", "over max_env_bytes (" + std::to_string(cfg.max_env_bytes) + ")");
  return {};
}

field_error check_tags(const node_config& cfg, const pair_vector* tags) {
  if (tags == nullptr) return {};
  if (tags->size() > cfg.max_tags) return invalid("tags", "too many tags");
  for (const auto* kv : *tags) {
    const auto k = wire::str(kv->key());
    const auto v = wire::str(kv->value());
    if (k.empty() || k.size() > cfg.max_tag_bytes || v.size() > cfg.max_tag_bytes)
      return invalid("tags", "keys must be 1.." + std::to_string(cfg.max_tag_bytes) +
                                 " bytes and values at most that");
  }
  return {};
}

field_error check_abs_path(const node_config& cfg, std::string_view path,
                           const std::string& field) {
  if (!path.empty() && (path.front() != '/' || path.size() > cfg.max_path_bytes ||
                        path.find('\0') != std::string_view::npos))
    return invalid(field, "must be an absolute path");
  return {};
}

}  // namespace corral
