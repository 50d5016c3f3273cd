// Fuzz target: ReplayRequest, as the sandbox actor consumes it (actors/sandbox.cpp on_replay):
// verify; the exec id must be a valid token; the process and its output are read from a real
// store (RocksDB in a temp dir, with one finished exec of five chunks and one running exec)
// from the requested seq; each chunk is answered as an OutputChunk (read back by the client's
// sequencer), then the ExecExit when the replay reached it, then the Ack.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "actors/validate.hpp"
#include "actors/wire_build.hpp"
#include "client/output_sequencer.hpp"
#include "client/replies.hpp"
#include "schemas/ids.hpp"
#include "storage/store.hpp"
#include "tests/fuzz/fuzz_checks.hpp"

using namespace corral;

namespace {

const std::string sandbox_id = "sb-0123456789abcdef0123456789abcdef";

storage::store& fixture() {
  static std::unique_ptr<storage::store> db = [] {
    auto dir = std::filesystem::temp_directory_path() /
               ("corral-fuzz-replay-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    auto s = storage::store::open(dir.string(), storage::store_options{});
    if (!s.ok()) fuzz::fail("cannot open the store");
    std::atexit([] {
      std::filesystem::remove_all(std::filesystem::temp_directory_path() /
                                  ("corral-fuzz-replay-" + std::to_string(::getpid())));
    });
    auto db = std::move(*s);
    storage::sandbox_record sb;
    sb.id = sandbox_id;
    storage::process_record done;
    done.sandbox_id = sandbox_id;
    done.exec_id = "ex-done";
    done.handle = 1;
    done.argv = {"echo"};
    done.finished = true;
    done.next_seq = 6;
    storage::process_record live = done;
    live.exec_id = "ex-live";
    live.handle = 2;
    live.finished = false;
    live.next_seq = 2;
    if (!db->put_sandbox_with_processes(sb, {done, live}).ok()) fuzz::fail("cannot store");
    std::vector<storage::output_chunk> chunks;
    for (uint64_t seq = 0; seq < 5; ++seq)
      chunks.push_back(storage::output_chunk{seq, seq % 2 ? wire::Stream::stderr : wire::Stream::stdout,
                                             seq * 100, wire::bytes(100, static_cast<uint8_t>(seq))});
    if (!db->append_output(sandbox_id, "ex-done", chunks).ok()) fuzz::fail("cannot store output");
    if (!db->append_output(sandbox_id, "ex-live", {chunks[0], chunks[1]}).ok())
      fuzz::fail("cannot store output");
    return db;
  }();
  return *db;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  node_config cfg;
  auto& db = fixture();
  const auto* msg = wire::verify<wire::ReplayRequest>(data, size);
  if (msg == nullptr) return 0;
  const std::string exec_id(wire::str(msg->exec_id()));
  if (!wire::valid_token(exec_id)) return 0;
  auto proc = db.get_process(sandbox_id, exec_id);
  if (!proc.ok()) return 0;
  auto chunks = db.read_output(sandbox_id, exec_id, msg->from_seq(), cfg.replay_batch_bytes);
  if (!chunks.ok()) fuzz::fail("stored output does not read back");
  uint64_t next = msg->from_seq();
  if (chunks->empty() && proc->finished && msg->from_seq() + 1 < proc->next_seq) return 0;  // expired
  client::output_sequencer seq;
  const client::output_sequencer::emit_fn emit = [](const client::output_frame&) {};
  for (const auto& c : *chunks) {
    if (c.seq < msg->from_seq()) fuzz::fail("the store replayed a chunk before from_seq");
    flatbuffers::FlatBufferBuilder fbb(c.data.size() + 128);
    auto id = fbb.CreateString(exec_id);
    auto d = fbb.CreateVector(c.data.data(), c.data.size());
    fbb.Finish(wire::CreateOutputChunk(fbb, id, c.seq, c.stream, c.offset, d),
               wire::OutputChunkIdentifier());
    auto frame = wire::release(fbb);
    fuzz::expect_answer<wire::OutputChunk>(frame);
    (void)seq.offer(std::move(frame), emit);
    next = c.seq + 1;
  }
  const bool reached_end = proc->finished && next + 1 >= proc->next_seq;
  if (reached_end) {
    auto exit = make_exec_exit(*proc);
    fuzz::expect_answer<wire::ExecExit>(exit);
    (void)seq.offer(std::move(exit), emit);
  }
  const bool more = !reached_end && proc->finished;
  fuzz::expect_answer<wire::Ack>(wire::make_page_end(more, 0, more ? "more" : "done"));
  return 0;
}
