// corral token create | revoke: a tenant's NATS identity and gateway tokens, in the deployment
// under DIR (`corral up`'s layout; docs/operations.md, "Identities and tenants").
#include <cstdlib>
#include <iostream>

#include "cli/commands/command.hpp"
#include "cli/token.hpp"
#include "cli/up.hpp"
#include "schemas/ids.hpp"
#include "schemas/subjects.hpp"

namespace corral::cli {

namespace {

int create(context& ctx, const args_t& args);
int revoke(context& ctx, const args_t& args);

#define CORRAL_TOKEN_OPTIONS                                                          \
  "options:\n"                                                                      \
  "  --tenant T     the tenant (default: --tenant, CORRAL_TENANT or 'default')\n"    \
  "  --data DIR     the deployment's data directory (default ./var)\n"              \
  "  --tokens FILE  the gateway's tokens file (default DIR/tokens, or CORRAL_TOKENS)\n"
constexpr std::string_view token_create_help =
    "The identity's seed is DIR/auth/tenant-T.nk (the running nats-server reloads its users);\n"
    "the token is printed once, and only its hash kept (in DIR/tokens).\n"
    "\n" CORRAL_TOKEN_OPTIONS;
constexpr std::string_view token_revoke_help =
    "The tenant's connections are closed and its key refused from then on.\n"
    "\n" CORRAL_TOKEN_OPTIONS;
#undef CORRAL_TOKEN_OPTIONS

}  // namespace

extern const verb token_create_verb{
    "token create",
    "[--tenant T] [--data DIR] [--tokens FILE]",
    "Make a tenant's NATS identity (once) and a new gateway token.",
    token_create_help,
    create};

extern const verb token_revoke_verb{
    "token revoke",
    "[--tenant T] [--data DIR] [--tokens FILE]",
    "Remove a tenant: its NATS identity and every gateway token of it.",
    token_revoke_help,
    revoke};

namespace {

struct token_args {
  std::string tenant, data = "var", file;
};

// Parses the options; 0, or the exit status of a usage error.
int parse(const verb& v, const context& ctx, const args_t& args, token_args& t) {
  t.tenant = ctx.cfg.tenant;
  if (const char* e = std::getenv("CORRAL_TOKENS"); e && *e) t.file = e;
  arg_reader r(args);
  bool ok = true;
  while (r.next() && ok) {
    if (r.is("--tenant")) ok = r.value(t.tenant);
    else if (r.is("--data")) ok = r.value(t.data);
    else if (r.is("--tokens")) ok = r.value(t.file);
    else return usage_error(v, "unknown argument " + r.arg());
  }
  if (!ok) return usage_error(v, "missing value for " + r.arg());
  if (r.saw_separator()) return usage_error(v, "unknown argument --");
  if (!wire::valid_token(t.tenant)) return usage_error(v, "bad tenant " + t.tenant);
  if (wire::subjects::reserved_tenant(t.tenant))
    return usage_error(v, "'" + t.tenant + "' is reserved by the protocol");
  if (t.file.empty()) t.file = up_layout{t.data}.tokens_file();
  return 0;
}

int create(context& ctx, const args_t& args) {
  token_args t;
  if (int rc = parse(token_create_verb, ctx, args, t)) return rc;
  std::string error;
  bool created = false;
  auto seed = ensure_tenant_identity(t.data, t.tenant, &created, &error);
  if (!seed) return fail(error);
  auto token = create_token(t.tenant, t.file, &error);
  if (!token) return fail(error);
  std::cerr << "corral: tenant '" << t.tenant << "': NATS credentials " << *seed
            << (created ? " (new)" : "") << "; reply subjects under "
            << wire::subjects::tenant_inbox_prefix(t.tenant) << ". The HTTP token, printed once:\n";
  std::cout << *token << "\n";
  return exit_ok;
}

int revoke(context& ctx, const args_t& args) {
  token_args t;
  if (int rc = parse(token_revoke_verb, ctx, args, t)) return rc;
  std::string error;
  bool removed = false;
  if (!revoke_tenant_identity(t.data, t.tenant, &removed, &error)) return fail(error);
  auto tokens = remove_tokens(t.tenant, t.file, &error);
  if (!tokens) return fail(error);
  std::cerr << "corral: tenant '" << t.tenant << "': "
            << (removed ? "NATS identity removed" : "no NATS identity") << ", " << *tokens
            << " gateway token(s) removed\n";
  return exit_ok;
}

}  // namespace

}  // namespace corral::cli
