// The table of verbs, in the order `corral --help` lists them.
#include "cli/commands/command.hpp"

namespace corral::cli {

extern const verb up_verb, run_verb, exec_verb, sandbox_create_verb, sandbox_ls_verb,
    sandbox_info_verb, sandbox_wait_verb, sandbox_rm_verb, sandbox_tags_verb, sandbox_logs_verb,
    fs_cat_verb, fs_write_verb, fs_ls_verb, fs_stat_verb, fs_mkdir_verb, fs_rm_verb, usage_verb,
    node_ls_verb, token_create_verb, token_revoke_verb, sweep_verb;

const std::vector<const verb*>& verbs() {
  static const std::vector<const verb*> all = {
      &up_verb,           &run_verb,          &exec_verb,         &sandbox_create_verb,
      &sandbox_ls_verb,   &sandbox_info_verb, &sandbox_wait_verb, &sandbox_rm_verb,
      &sandbox_tags_verb, &sandbox_logs_verb, &fs_cat_verb,       &fs_write_verb,
      &fs_ls_verb,        &fs_stat_verb,      &fs_mkdir_verb,     &fs_rm_verb,
      &usage_verb,        &node_ls_verb,      &token_create_verb, &token_revoke_verb,
      &sweep_verb};
  return all;
}

}  // namespace corral::cli
