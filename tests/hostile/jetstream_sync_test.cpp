// JetStream acknowledges only what is on disk: with corral's nats-server build
// (deploy/build-nats-server.sh, docs/jobs.md "Durability of JetStream") and
// `jetstream { sync_interval: always }`, every publish is fsynced to its message block before the
// server writes its acknowledgement to the client, and the stream's directories and metadata are
// fsynced before the stream's creation is answered. Debian's nats-server 2.9.10 acknowledges from
// the page cache and fsyncs every 2 minutes: a power loss of the NATS host loses acknowledged jobs
// and results.
//
// The proof is kernel-level: the server runs traced by strace (-f, every thread; -yy, the path or
// TCP endpoints of each fd). A traced thread stops at every system call's exit until strace has
// printed it, so an fsync printed before the write of an ack finished before that write began.
// For each acknowledged publish the trace must show, in this order: the pwrite of the message's
// bytes into its block file, an fsync of that block file, the write of the ack to the client's
// socket. The same observation of the stock server shows no such fsync (the detector can fail).
//
// The patched binary is <build>/bin/corral-nats-server (deploy/build.sh); CORRAL_SYNC_NATS_SERVER
// names another one (e.g. to run these tests against a newer upstream server).
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "bus/connection.hpp"
#include "bus/jetstream.hpp"
#include "tests/support/child_process.hpp"
#include "tests/support/nats_server.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using corral::test::background_process;
using corral::test::nats_server_process;

// Longest any single event (a server start, a traced publish, a line of the trace) may take.
constexpr auto event_deadline = 30s;
// Publishes checked per run.
constexpr int publishes = 20;
const std::string stream_name = "SYNC_PROOF";
const std::string subject = "corral.sync.proof";

std::string patched_server() {
  if (const char* env = std::getenv("CORRAL_SYNC_NATS_SERVER"); env != nullptr && *env != '\0')
    return env;
  return std::string(CORRAL_BIN_DIR) + "/corral-nats-server";
}

std::string stock_server() { return CORRAL_STOCK_NATS_SERVER; }

// The payload of publish k: unique in the trace (zero-padded, so no payload is a prefix of
// another).
std::string payload(int k) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "sync-proof-%06d-end", k);
  return buf;
}

// A nats-server of `binary` with `config`.
std::unique_ptr<nats_server_process> server_of(const std::string& binary,
                                               const std::string& config) {
  nats_server_process::options o;
  o.config = config;
  o.binary = binary;
  return std::make_unique<nats_server_process>(o);
}

// `binary -t -c <config>`: the server's own configuration check.
corral::test::run_result check_config(const std::string& binary, const std::string& config) {
  char tmpl[] = "/tmp/corral-sync-conf-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return {};
  const std::string dir = tmpl;
  {
    std::ofstream f(dir + "/server.conf");
    f << "jetstream {\n  store_dir: \"" << dir << "/store\"\n" << config << "\n}\n";
  }
  auto r = corral::test::run({binary, "-t", "-c", dir + "/server.conf"}, {}, event_deadline);
  std::error_code ec;
  fs::remove_all(dir, ec);
  return r;
}

// One system call in an strace -f -tt -yy trace: the line where it began (its arguments) and the
// line where it ended (its result). A call interrupted in the output by another thread's event is
// printed as "name(args <unfinished ...>" and later "<... name resumed>rest".
struct traced_call {
  std::string name;
  std::string text;  // arguments and result
  std::size_t entry = 0;
  std::optional<std::size_t> exit;
  // The path or endpoint of the first argument's fd: "8</a/b/1.blk>, ..." or "8</a/b/1.blk>)"
  // -> "/a/b/1.blk".
  std::string fd_path() const {
    auto lt = text.find('<');
    if (lt == std::string::npos || lt > text.find_first_of(",)")) return {};
    auto gt = std::min(text.find(">, ", lt), text.find(">)", lt));
    if (gt == std::string::npos) return {};
    return text.substr(lt + 1, gt - lt - 1);
  }
  bool succeeded() const { return exit.has_value() && text.find(") = -1") == std::string::npos; }
};

std::vector<traced_call> parse_trace(const std::string& trace) {
  std::vector<traced_call> calls;
  std::map<long, std::size_t> open;  // pid -> index of its unfinished call
  std::istringstream in(trace);
  std::string line;
  for (std::size_t n = 0; std::getline(in, line); ++n) {
    // "[pid  123] 12:00:00.000001 rest", "123 12:00:00.000001 rest" or "12:00:00.000001 rest".
    long pid = 0;
    std::string rest = line;
    if (rest.rfind("[pid", 0) == 0) {
      auto close = rest.find(']');
      if (close == std::string::npos) continue;
      pid = std::strtol(rest.c_str() + 4, nullptr, 10);
      rest = rest.substr(close + 1);
    } else if (!rest.empty() && std::isdigit(static_cast<unsigned char>(rest[0])) &&
               rest.find(' ') < rest.find(':')) {
      pid = std::strtol(rest.c_str(), nullptr, 10);
      rest = rest.substr(rest.find(' '));
    }
    auto start = rest.find_first_not_of(' ');
    if (start == std::string::npos) continue;
    rest = rest.substr(start);
    auto space = rest.find(' ');  // after the timestamp
    if (space == std::string::npos) continue;
    rest = rest.substr(space + 1);
    if (rest.rfind("<... ", 0) == 0) {
      auto it = open.find(pid);
      auto resumed = rest.find(" resumed>");
      if (it == open.end() || resumed == std::string::npos) continue;
      calls[it->second].text += rest.substr(resumed + 9);
      calls[it->second].exit = n;
      open.erase(it);
      continue;
    }
    auto paren = rest.find('(');
    if (paren == std::string::npos || rest.rfind("---", 0) == 0 || rest.rfind("+++", 0) == 0)
      continue;
    traced_call c;
    c.name = rest.substr(0, paren);
    c.text = rest.substr(paren + 1);
    c.entry = n;
    const std::string unfinished = " <unfinished ...>";
    if (c.text.size() >= unfinished.size() &&
        c.text.compare(c.text.size() - unfinished.size(), unfinished.size(), unfinished) == 0) {
      c.text.resize(c.text.size() - unfinished.size());
      open[pid] = calls.size();
    } else {
      c.exit = n;
    }
    calls.push_back(std::move(c));
  }
  return calls;
}

bool is_fsync(const traced_call& c) { return c.name == "fsync" || c.name == "fdatasync"; }
bool is_socket_write(const traced_call& c) {
  return (c.name == "write" || c.name == "writev" || c.name == "sendmsg" || c.name == "sendto") &&
         c.fd_path().rfind("TCP:", 0) == 0;
}

// What the trace shows about publish k.
struct publish_trace {
  const traced_call* block_write = nullptr;    // the message's bytes into its block file
  const traced_call* ack = nullptr;            // the ack written to the client
  const traced_call* fsync_between = nullptr;  // an fsync of that block file, after the write ended
                                               // and ended before the ack began
};

publish_trace find_publish(const std::vector<traced_call>& calls, int k, uint64_t seq) {
  publish_trace p;
  const std::string blocks = "/streams/" + stream_name + "/msgs/";
  for (const auto& c : calls) {
    if ((c.name == "pwrite64" || c.name == "write" || c.name == "pwritev") &&
        c.text.find(payload(k)) != std::string::npos &&
        c.fd_path().find(blocks) != std::string::npos && c.succeeded()) {
      p.block_write = &c;
      break;
    }
  }
  // The ack: {"stream":"SYNC_PROOF", "seq":N} in the server's MSG to the publisher's inbox
  // (strace shows the quotes escaped).
  const std::string ack_text =
      R"(\"stream\":\")" + stream_name + R"(\", \"seq\":)" + std::to_string(seq) + "}";
  for (const auto& c : calls) {
    if (is_socket_write(c) && c.text.find(ack_text) != std::string::npos) {
      p.ack = &c;
      break;
    }
  }
  if (p.block_write == nullptr || p.ack == nullptr) return p;
  const std::string block = p.block_write->fd_path();
  for (const auto& c : calls) {
    if (is_fsync(c) && c.fd_path() == block && c.succeeded() && c.entry > *p.block_write->exit &&
        *c.exit < p.ack->entry) {
      p.fsync_between = &c;
      break;
    }
  }
  return p;
}

// A server traced from a point on: strace attached to every thread, its trace collected.
class traced {
 public:
  bool attach(pid_t pid, const std::string& syscalls, std::string* why) {
    if (!strace_.start({"strace", "-f", "-tt", "-yy", "-s", "4096", "-e", "trace=" + syscalls, "-p",
                        std::to_string(pid)})) {
      *why = "cannot start strace";
      return false;
    }
    // "strace: Process N attached with K threads": every thread is traced from here on.
    if (!strace_.wait_for_output("attached", event_deadline)) {
      *why = "strace did not attach: " + strace_.output();
      return false;
    }
    return true;
  }
  bool wait_for(const std::string& needle) {
    return strace_.wait_for_output(needle, event_deadline);
  }
  // Detaches (the server goes on) and returns the whole trace.
  std::string detach() {
    strace_.stop(event_deadline);
    return strace_.output();
  }

 private:
  background_process strace_;
};

struct session {
  std::unique_ptr<corral::bus::connection> conn;
  std::unique_ptr<corral::bus::jetstream> js;
};

session connect(const nats_server_process& server) {
  session s;
  corral::bus::options o;
  o.urls = {server.url()};
  o.name = "jetstream-sync-test";
  std::string error;
  s.conn = corral::bus::connection::connect(o, &error);
  EXPECT_NE(s.conn, nullptr) << error;
  if (!s.conn) return s;
  s.js = corral::bus::jetstream::open(*s.conn, &error);
  EXPECT_NE(s.js, nullptr) << error;
  return s;
}

corral::bus::stream_config proof_stream() {
  corral::bus::stream_config cfg;
  cfg.name = stream_name;
  cfg.subjects = {subject};
  cfg.work_queue = true;  // like CORRAL_JOBS
  return cfg;
}

// Publishes payload(1..n) and returns their acknowledged sequences.
std::vector<uint64_t> publish_all(corral::bus::jetstream& js, int n) {
  std::vector<uint64_t> seqs;
  for (int k = 1; k <= n; ++k) {
    const std::string body = payload(k);
    auto a = js.publish(subject, body.data(), body.size(), body);
    EXPECT_TRUE(a) << a.error().message;
    if (!a) break;
    EXPECT_FALSE(a.value().duplicate);
    seqs.push_back(a.value().sequence);
  }
  return seqs;
}

const std::string traced_calls = "pwrite64,pwritev,write,writev,sendmsg,sendto,fsync,fdatasync";

std::string require_patched_binary() {
  const std::string bin = patched_server();
  if (!fs::exists(bin)) return "missing " + bin + ": build with deploy/build.sh";
  return {};
}

std::string excerpt(const std::string& trace) {
  return trace.size() <= 6000
             ? trace
             : trace.substr(0, 3000) + "\n...\n" + trace.substr(trace.size() - 3000);
}

}  // namespace

// The option is corral's: Debian's server refuses it, the patched one takes `always` and
// durations and refuses what is neither.
TEST(jetstream_sync, OnlyThePatchedServerTakesSyncInterval) {
  auto stock = check_config(stock_server(), "  sync_interval: always");
  EXPECT_NE(stock.exit_code, 0) << stock.out << stock.err;
  EXPECT_NE((stock.out + stock.err).find("unknown field \"sync_interval\""), std::string::npos)
      << stock.out << stock.err;

  const std::string missing = require_patched_binary();
  ASSERT_TRUE(missing.empty()) << missing;
  for (const char* good :
       {"  sync_interval: always", "  sync_interval: ALWAYS", "  sync_interval: \"30s\"",
        "  sync_interval: \"2m\"", "  sync: \"250ms\""}) {
    auto r = check_config(patched_server(), good);
    EXPECT_EQ(r.exit_code, 0) << good << ": " << r.out << r.err;
  }
  for (const char* bad : {"  sync_interval: \"0s\"", "  sync_interval: \"-1s\"",
                          "  sync_interval: \"sometimes\"", "  sync_interval: true"}) {
    auto r = check_config(patched_server(), bad);
    EXPECT_NE(r.exit_code, 0) << bad << ": " << r.out << r.err;
    EXPECT_NE((r.out + r.err).find("sync"), std::string::npos) << bad << ": " << r.out << r.err;
  }
}

// The promise: with `always`, no publish is acknowledged before its bytes were fsynced to its
// block file, and the stream's creation is answered only once its directories (from the message
// blocks' up to the store directory) and metadata are on disk.
TEST(jetstream_sync, AlwaysFsyncsEachMessageBeforeItsAck) {
  const std::string missing = require_patched_binary();
  ASSERT_TRUE(missing.empty()) << missing;
  auto server = server_of(patched_server(), "jetstream {\n  sync_interval: always\n}\n");
  ASSERT_TRUE(server->start()) << server->error();
  EXPECT_NE(server->log().find("Sync Interval:   always"), std::string::npos) << server->log();

  traced trace;
  std::string why;
  ASSERT_TRUE(trace.attach(server->pid(), traced_calls, &why)) << why;
  auto s = connect(*server);
  ASSERT_TRUE(s.js);
  auto st = s.js->ensure_stream(proof_stream());
  ASSERT_TRUE(st) << st.error().message;
  auto seqs = publish_all(*s.js, publishes);
  ASSERT_EQ(seqs.size(), static_cast<std::size_t>(publishes));
  ASSERT_TRUE(trace.wait_for(R"(\"seq\":)" + std::to_string(seqs.back()) + "}"));
  const std::string text = trace.detach();
  const auto calls = parse_trace(text);

  int unsynced = 0;
  for (int k = 1; k <= publishes; ++k) {
    auto p = find_publish(calls, k, seqs[k - 1]);
    ASSERT_NE(p.block_write, nullptr) << "no block write of " << payload(k) << "\n"
                                      << excerpt(text);
    ASSERT_NE(p.ack, nullptr) << "no ack of seq " << seqs[k - 1] << "\n" << excerpt(text);
    EXPECT_LT(*p.block_write->exit, p.ack->entry) << payload(k);
    EXPECT_NE(p.fsync_between, nullptr)
        << "publish " << k << " (seq " << seqs[k - 1] << ") was acknowledged (trace line "
        << p.ack->entry << ") with no fsync of " << p.block_write->fd_path()
        << " after its write (line " << *p.block_write->exit << ")";
    if (p.fsync_between == nullptr) ++unsynced;
  }
  EXPECT_EQ(unsynced, 0) << unsynced << " of " << publishes
                         << " publishes acknowledged before their fsync; the trace:\n"
                         << excerpt(text);

  // The stream's creation: everything that leads to its messages is on disk before the answer.
  const traced_call* created = nullptr;
  for (const auto& c : calls)
    if (is_socket_write(c) && c.text.find("stream_create_response") != std::string::npos) {
      created = &c;
      break;
    }
  ASSERT_NE(created, nullptr) << excerpt(text);
  const std::string store = fs::canonical(server->store_dir()).string();
  const std::string stream_dir = store + "/jetstream/$G/streams/" + stream_name;
  for (const std::string& path :
       {stream_dir + "/msgs", stream_dir, store + "/jetstream/$G/streams", store + "/jetstream/$G",
        store + "/jetstream", store, stream_dir + "/meta.inf.tmp", stream_dir + "/meta.sum.tmp"}) {
    bool synced = false;
    for (const auto& c : calls)
      synced = synced ||
               (is_fsync(c) && c.succeeded() && c.fd_path() == path && *c.exit < created->entry);
    EXPECT_TRUE(synced) << path << " was not fsynced before the stream's creation was answered\n"
                        << excerpt(text);
  }
}

// The detector, on the server corral ran before: Debian's nats-server acknowledges every
// publish without an fsync of its block (what the test above would see without the patch).
TEST(jetstream_sync, StockServerAcksBeforeAnyFsync) {
  auto server = server_of(stock_server(), "");
  ASSERT_TRUE(server->start()) << server->error();
  auto s = connect(*server);
  ASSERT_TRUE(s.js);
  auto st = s.js->ensure_stream(proof_stream());
  ASSERT_TRUE(st) << st.error().message;

  traced trace;
  std::string why;
  ASSERT_TRUE(trace.attach(server->pid(), traced_calls, &why)) << why;
  auto seqs = publish_all(*s.js, publishes);
  ASSERT_EQ(seqs.size(), static_cast<std::size_t>(publishes));
  ASSERT_TRUE(trace.wait_for(R"(\"seq\":)" + std::to_string(seqs.back()) + "}"));
  const std::string text = trace.detach();
  const auto calls = parse_trace(text);

  for (int k = 1; k <= publishes; ++k) {
    auto p = find_publish(calls, k, seqs[k - 1]);
    ASSERT_NE(p.block_write, nullptr) << "no block write of " << payload(k) << "\n"
                                      << excerpt(text);
    ASSERT_NE(p.ack, nullptr) << "no ack of seq " << seqs[k - 1] << "\n" << excerpt(text);
    EXPECT_LT(*p.block_write->exit, p.ack->entry) << payload(k);
    EXPECT_EQ(p.fsync_between, nullptr)
        << "publish " << k << ": the stock server fsynced before the ack";
  }
}

// A duration replaces the 2-minute timer: with "1s" the block file is fsynced by the timer, with no
// further traffic, well within the deadline (Debian's server waits 2 minutes from the stream's
// start). Loose on purpose: it shows the setting reaches the store, not the timer's precision.
TEST(jetstream_sync, DurationSyncsBlocksOnThatInterval) {
  const std::string missing = require_patched_binary();
  ASSERT_TRUE(missing.empty()) << missing;
  auto server = server_of(patched_server(), "jetstream {\n  sync_interval: \"1s\"\n}\n");
  ASSERT_TRUE(server->start()) << server->error();
  EXPECT_NE(server->log().find("Sync Interval:   1s"), std::string::npos) << server->log();
  auto s = connect(*server);
  ASSERT_TRUE(s.js);
  auto st = s.js->ensure_stream(proof_stream());
  ASSERT_TRUE(st) << st.error().message;

  traced trace;
  std::string why;
  ASSERT_TRUE(trace.attach(server->pid(), "fsync,fdatasync", &why)) << why;
  auto seqs = publish_all(*s.js, 1);
  ASSERT_EQ(seqs.size(), 1u);
  EXPECT_TRUE(trace.wait_for("/streams/" + stream_name + "/msgs/1.blk>"))
      << "no fsync of the block within " << event_deadline.count() << " s\n"
      << trace.detach();
}
