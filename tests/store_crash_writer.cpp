// Child process of store_crash_test (tests/store_test.cpp): writes sandbox transitions to a
// store and reports each one it saw acknowledged, until the test kills it with SIGKILL.
//
//   store_crash_writer <dir> <ack_fd> <round> <transitions> <seed>
//
// Transition t (0-based) moves sandbox k = t % 4, id "sb-r{round}-{k}", to version
// v = t / 4 + 1:
//   1. append_output(id, "ex-crash", {seq v-1, data D}), not synced;
//   2. the sandbox record, with next_exec_handle = v and message = D, written synced: with
//      put_sandbox_with_processes(record, {process "ex-crash" with next_seq = v}) when v is odd,
//      with put_sandbox(record) when v is even;
//   3. once that write returned ok, the ack frame: uint32 length (host order) + encode(record).
// Exits 0 after the last transition, 1 on a usage error, 2 when a store call fails.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>

#include "storage/store.hpp"

namespace {

using namespace corral;
using namespace corral::storage;

[[noreturn]] void fail(const char* what, const status& st) {
  std::fprintf(stderr, "store_crash_writer: %s: %s\n", what, st.message.c_str());
  std::exit(2);
}

// Writes the whole frame; one write() when it fits in PIPE_BUF, so it is never torn.
void write_all(int fd, const std::string& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::perror("store_crash_writer: write ack");
      std::exit(2);
    }
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s <dir> <ack_fd> <round> <transitions> <seed>\n", argv[0]);
    return 1;
  }
  const std::string dir = argv[1];
  const int ack_fd = std::atoi(argv[2]);
  const std::string round = argv[3];
  const uint64_t transitions = std::strtoull(argv[4], nullptr, 10);
  std::mt19937_64 rng(std::strtoull(argv[5], nullptr, 10));
  constexpr uint64_t sandboxes = 4;
  const std::string exec_id = "ex-crash";

  auto opened = store::open(dir, store_options{});
  if (!opened) fail("open", opened.error());
  store& db = **opened;

  for (uint64_t t = 0; t < transitions; ++t) {
    const uint64_t k = t % sandboxes;
    const uint64_t v = t / sandboxes + 1;
    const std::string id = "sb-r" + round + "-" + std::to_string(k);
    const std::string data = "round " + round + " sandbox " + std::to_string(k) + " v" +
                             std::to_string(v) + " " + std::to_string(rng());

    output_chunk chunk;
    chunk.seq = v - 1;
    chunk.stream = (v % 2 == 0) ? wire::Stream::stderr : wire::Stream::stdout;
    chunk.offset = v * 1000;
    chunk.data.assign(data.begin(), data.end());
    if (auto st = db.append_output(id, exec_id, {chunk}); !st.ok()) fail("append_output", st);

    sandbox_record rec;
    rec.id = id;
    rec.tenant = "tenant-crash";
    rec.name = "crash " + std::to_string(k);
    rec.state = static_cast<wire::SandboxState>(rng() % 8);
    rec.node = "node-crash";
    rec.created_at_ms = static_cast<int64_t>(1'700'000'000'000 + k);
    rec.started_at_ms = static_cast<int64_t>(rng() % 1'000'000);
    rec.has_return_code = (v % 3 == 0);
    rec.return_code = static_cast<int32_t>(v % 256);
    rec.message = data;
    rec.tags = {{"round", round}, {"v", std::to_string(v)}};
    rec.entrypoint = {"/bin/sh", "-c", "echo " + std::to_string(v)};
    rec.next_exec_handle = v;
    rec.request_id = "rq-" + std::to_string(rng());

    if (v % 2 == 1) {
      process_record proc;
      proc.sandbox_id = id;
      proc.exec_id = exec_id;
      proc.handle = 1;
      proc.argv = {"cat"};
      proc.next_seq = v;
      if (auto st = db.put_sandbox_with_processes(rec, {proc}); !st.ok()) {
        fail("put_sandbox_with_processes", st);
      }
    } else if (auto st = db.put_sandbox(rec); !st.ok()) {
      fail("put_sandbox", st);
    }

    const std::string encoded = encode(rec);
    const auto size = static_cast<uint32_t>(encoded.size());
    std::string frame(sizeof(size), '\0');
    std::memcpy(frame.data(), &size, sizeof(size));
    frame += encoded;
    write_all(ack_fd, frame);
  }
  if (auto st = db.close(); !st.ok()) fail("close", st);
  return 0;
}
