// Seeds of the wire message targets: real messages of every kind, built by the project's own
// encoders where they are callable (replies, init commands and events, jobs, results) and with
// the generated builders as the senders use them otherwise (requests), plus edge cases.
#include <algorithm>
#include <string>
#include <vector>

#include "actors/validate.hpp"
#include "actors/wire_build.hpp"
#include "client/sweep/job.hpp"
#include "client/sweep/out_file.hpp"
#include "client/sweep/program.hpp"
#include "client/sweep/verdict.hpp"
#include "executor/jobs/guest.hpp"
#include "executor/jobs/job_runner.hpp"
#include "tests/fuzz/file_ops_harness.hpp"
#include "tests/fuzz/fuzz_checks.hpp"
#include "tests/fuzz/init_commands.hpp"
#include "tests/fuzz/seeds.hpp"

namespace corral::fuzz {
namespace {

using wire::bytes;
using strings = std::vector<std::string>;

template <class Finish>
bytes built(Finish finish) {
  flatbuffers::FlatBufferBuilder fbb(1024);
  finish(fbb);
  return wire::release(fbb);
}

auto vec_of(flatbuffers::FlatBufferBuilder& fbb, const strings& v) {
  return fbb.CreateVectorOfStrings(v);
}

// Edge cases every message target gets: nothing, the identifier alone, a root with no field.
void edges(seed_writer& out, const std::string& target, const char* identifier) {
  out.write(target, "edge_empty", {});
  bytes id_only(8, 0);
  id_only[0] = 8;
  for (int i = 0; i < 4; ++i) id_only[4 + i] = static_cast<uint8_t>(identifier[i]);
  out.write(target, "edge_identifier_only", id_only);
  out.write(target, "edge_empty_table", built([&](flatbuffers::FlatBufferBuilder& fbb) {
              flatbuffers::uoffset_t start = fbb.StartTable();
              fbb.Finish(flatbuffers::Offset<void>(fbb.EndTable(start)), identifier);
            }));
}

storage::sandbox_record a_sandbox() {
  storage::sandbox_record r;
  r.id = "sb-0123456789abcdef0123456789abcdef";
  r.tenant = "tenant-a";
  r.name = "web";
  r.image = "host";
  r.state = wire::SandboxState::running;
  r.node = "node-1";
  r.created_at_ms = 1'700'000'000'000;
  r.started_at_ms = 1'700'000'000'300;
  r.timeout_ms = 300'000;
  r.tags = {{"app", "web"}, {"env", "prod"}};
  r.env = {{"LANG", "C.UTF-8"}};
  r.workdir = "/srv";
  r.cpu_millis = 1000;
  r.memory_mib = 512;
  r.ready = true;
  return r;
}

storage::process_record a_process(bool finished) {
  storage::process_record p;
  p.sandbox_id = "sb-0123456789abcdef0123456789abcdef";
  p.exec_id = "ex-0123456789abcdef";
  p.handle = 3;
  p.argv = {"python3", "-c", "print(1)"};
  p.finished = finished;
  p.outcome = wire::Outcome::exited;
  p.exit_code = 0;
  p.stdout_bytes = 2;
  p.next_seq = finished ? 2 : 1;
  if (finished) p.ended_at_ms = 1'700'000'001'000;
  return p;
}

bytes create_sandbox(const std::string& name, const strings& entrypoint,
                     const wire::string_pairs& env, const wire::string_pairs& tags,
                     int64_t timeout_ms, uint32_t cpu, uint32_t mem, const strings& probe,
                     int32_t port, const std::string& workdir = {}) {
  return built([&](flatbuffers::FlatBufferBuilder& fbb) {
    auto rid = fbb.CreateString("req-1");
    auto n = fbb.CreateString(name);
    auto img = fbb.CreateString("");
    auto ep = vec_of(fbb, entrypoint);
    auto e = wire::build_pairs(fbb, env);
    auto wd = fbb.CreateString(workdir);
    auto t = wire::build_pairs(fbb, tags);
    auto pc = vec_of(fbb, probe);
    fbb.Finish(wire::CreateCreateSandbox(fbb, rid, n, img, timeout_ms, ep, e, wd, cpu, mem, t,
                                         0, 0, 0, pc, port, 0),
               wire::CreateSandboxIdentifier());
  });
}

bytes exec_request(const std::string& id, const strings& argv, const wire::string_pairs& env,
                   const std::string& workdir, int64_t timeout_ms, bool stdin_open, bool pty,
                   uint16_t rows = 0, uint16_t cols = 0) {
  // As client/client.cpp's exec builds it.
  return built([&](flatbuffers::FlatBufferBuilder& fbb) {
    auto i = fbb.CreateString(id);
    auto a = vec_of(fbb, argv);
    auto e = wire::build_pairs(fbb, env);
    auto wd = fbb.CreateString(workdir);
    fbb.Finish(wire::CreateExecRequest(fbb, i, a, e, wd, timeout_ms, stdin_open, pty, rows, cols),
               wire::ExecRequestIdentifier());
  });
}

bytes fs_request(const std::string& path, uint64_t offset, uint64_t length, const std::string& data,
                 bool truncate, bool append, bool parents, bool recursive, uint32_t mode) {
  // As client/client.cpp's fs_call builds it.
  return built([&](flatbuffers::FlatBufferBuilder& fbb) {
    auto p = fbb.CreateString(path);
    auto d = fbb.CreateVector(reinterpret_cast<const uint8_t*>(data.data()), data.size());
    wire::FsRequestBuilder b(fbb);
    b.add_path(p);
    b.add_offset(offset);
    b.add_length(length);
    b.add_data(d);
    b.add_truncate(truncate);
    b.add_append(append);
    b.add_parents(parents);
    b.add_recursive(recursive);
    b.add_mode(mode);
    fbb.Finish(b.Finish(), wire::FsRequestIdentifier());
  });
}

bytes with_op(uint8_t op, const bytes& payload) {
  bytes b(payload.size() + 1, op);
  std::copy(payload.begin(), payload.end(), b.begin() + 1);
  return b;
}

bytes output_chunk(const std::string& exec_id, uint64_t seq, wire::Stream s, uint64_t offset,
                   const std::string& text) {
  return built([&](flatbuffers::FlatBufferBuilder& fbb) {
    auto id = fbb.CreateString(exec_id);
    auto d = fbb.CreateVector(reinterpret_cast<const uint8_t*>(text.data()), text.size());
    fbb.Finish(wire::CreateOutputChunk(fbb, id, seq, s, offset, d), wire::OutputChunkIdentifier());
  });
}

// An InitEvent whose union names `type` but carries no table: it verifies.
bytes event_without_table(wire::Event type) {
  return built([&](flatbuffers::FlatBufferBuilder& fbb) {
    fbb.Finish(wire::CreateInitEvent(fbb, type, 0), wire::InitEventIdentifier());
  });
}

}  // namespace

void wire_seeds(seed_writer& out) {
  node_config cfg;
  // -- requests the executor serves ----------------------------------------------------------
  out.write("create_sandbox", "default", create_sandbox("", {}, {}, {}, 0, 0, 0, {}, 0));
  out.write("create_sandbox", "full",
            create_sandbox("web", {"python3", "-m", "http.server"}, {{"PORT", "8000"}},
                           {{"app", "web"}}, 600'000, 2000, 1024, {"curl", "-f", "localhost"}, 0,
                           "/srv"));
  out.write("create_sandbox", "probe_port",
            create_sandbox("db", {}, {}, {}, 0, 0, 0, {}, 5432));
  out.write("create_sandbox", "bad_name", create_sandbox("no spaces!", {}, {}, {}, 0, 0, 0, {}, 0));
  out.write("create_sandbox", "bad_env", create_sandbox("", {}, {{"A=B", "1"}}, {}, 0, 0, 0, {}, 0));
  out.write("create_sandbox", "too_much_cpu",
            create_sandbox("", {}, {}, {}, 0, 1'000'000, 0, {}, 0));
  out.write("create_sandbox", "negative_timeout", create_sandbox("", {}, {}, {}, -1, 0, 0, {}, 0));
  edges(out, "create_sandbox", wire::CreateSandboxIdentifier());

  out.write("exec_request", "echo", exec_request("ex-1", {"echo", "hi"}, {}, "", 0, false, false));
  out.write("exec_request", "python_stdin",
            exec_request("", {"python3", "-"}, {{"PYTHONUNBUFFERED", "1"}}, "/tmp", 5000, true, false));
  out.write("exec_request", "pty", exec_request("ex-tty", {"bash"}, {{"TERM", "xterm"}}, "/", 0, true,
                                                 true, 40, 120));
  out.write("exec_request", "attach_only", wire::make_attach_request("ex-1"));
  out.write("exec_request", "empty_argv", exec_request("", {}, {}, "", 0, false, false));
  out.write("exec_request", "relative_workdir", exec_request("", {"ls"}, {}, "tmp", 0, false, false));
  out.write("exec_request", "bad_exec_id", exec_request("../x", {"ls"}, {}, "", 0, false, false));
  out.write("exec_request", "nul_in_value",
            exec_request("", {"env"}, {{"X", std::string("a\0b", 3)}}, "", 0, false, false));
  edges(out, "exec_request", wire::ExecRequestIdentifier());

  auto list = [&](const std::string& name, const wire::string_pairs& tags, bool ended) {
    return built([&](flatbuffers::FlatBufferBuilder& fbb) {
      auto n = fbb.CreateString(name);
      auto t = wire::build_pairs(fbb, tags);
      fbb.Finish(wire::CreateListSandboxes(fbb, n, t, ended), wire::ListSandboxesIdentifier());
    });
  };
  out.write("list_sandboxes", "all", list("", {}, false));
  out.write("list_sandboxes", "by_name", list("web", {}, true));
  out.write("list_sandboxes", "by_tags", list("", {{"app", "web"}, {"env", "prod"}}, true));
  edges(out, "list_sandboxes", wire::ListSandboxesIdentifier());

  auto set_tags = [&](const wire::string_pairs& tags) {
    return built([&](flatbuffers::FlatBufferBuilder& fbb) {
      auto t = wire::build_pairs(fbb, tags);
      fbb.Finish(wire::CreateSetTags(fbb, t), wire::SetTagsIdentifier());
    });
  };
  out.write("set_tags", "two", set_tags({{"app", "web"}, {"owner", "ana"}}));
  out.write("set_tags", "none", set_tags({}));
  out.write("set_tags", "empty_key", set_tags({{"", "x"}}));
  out.write("set_tags", "long_value", set_tags({{"k", std::string(cfg.max_tag_bytes + 1, 'v')}}));
  edges(out, "set_tags", wire::SetTagsIdentifier());

  auto replay = [&](const std::string& id, uint64_t from) {
    return built([&](flatbuffers::FlatBufferBuilder& fbb) {
      auto i = fbb.CreateString(id);
      fbb.Finish(wire::CreateReplayRequest(fbb, i, from), wire::ReplayRequestIdentifier());
    });
  };
  out.write("replay_request", "done_from_0", replay("ex-done", 0));
  out.write("replay_request", "done_from_3", replay("ex-done", 3));
  out.write("replay_request", "live_from_1", replay("ex-live", 1));
  out.write("replay_request", "gateway_probe", replay("ex-done", ~uint64_t{0} - 1));
  out.write("replay_request", "unknown", replay("ex-none", 0));
  edges(out, "replay_request", wire::ReplayRequestIdentifier());

  auto results_read = [](const std::string& batch, uint64_t from, uint32_t max) {
    flatbuffers::FlatBufferBuilder fbb;
    auto b = fbb.CreateString(batch);
    fbb.Finish(wire::CreateResultsRead(fbb, b, from, max), wire::ResultsReadIdentifier());
    return wire::release(fbb);
  };
  out.write("results_read", "first_page", results_read("sweep-0123456789abcdef", 1, 0));
  out.write("results_read", "from_seq_0", results_read("b1", 0, 5));
  out.write("results_read", "over_the_cap", results_read("b1", 42, 100000));
  out.write("results_read", "bad_batch", results_read("a.b", 1, 1));
  out.write("results_read", "last_seq", results_read("b1", ~uint64_t{0}, 1));
  edges(out, "results_read", wire::ResultsReadIdentifier());

  auto query = [&](int64_t ms, bool ready) {
    return built([&](flatbuffers::FlatBufferBuilder& fbb) {
      fbb.Finish(wire::CreateSandboxQuery(fbb, ms, ready), wire::SandboxQueryIdentifier());
    });
  };
  out.write("sandbox_query", "wait", query(30'000, false));
  out.write("sandbox_query", "until_ready", query(10'000, true));
  out.write("sandbox_query", "negative", query(-5, false));
  edges(out, "sandbox_query", wire::SandboxQueryIdentifier());

  auto stdin_write = [&](const std::string& id, const std::string& data, bool eof) {
    return built([&](flatbuffers::FlatBufferBuilder& fbb) {
      auto i = fbb.CreateString(id);
      auto d = fbb.CreateVector(reinterpret_cast<const uint8_t*>(data.data()), data.size());
      fbb.Finish(wire::CreateStdinWrite(fbb, i, d, eof), wire::StdinWriteIdentifier());
    });
  };
  // The exec id's length modulo 5 is init's process: 1 cat, 2 the pty, 3 held, 4 ended.
  out.write("stdin_write", "line", stdin_write("ex-cat", "hello\n", false));
  out.write("stdin_write", "eof", stdin_write("ex-cat", "", true));
  out.write("stdin_write", "pty", stdin_write("ex", "ls\r", false));
  out.write("stdin_write", "held", stdin_write("ex-", "x", false));
  out.write("stdin_write", "ended", stdin_write("ex-1", "x", true));
  edges(out, "stdin_write", wire::StdinWriteIdentifier());

  auto signal = [&](const std::string& id, int sig) {
    return built([&](flatbuffers::FlatBufferBuilder& fbb) {
      auto i = fbb.CreateString(id);
      fbb.Finish(wire::CreateSignalRequest(fbb, i, sig), wire::SignalRequestIdentifier());
    });
  };
  out.write("signal_request", "term", signal("ex-1", 15));
  out.write("signal_request", "kill_held", signal("ex", 9));  // handle 1 + 2 % 4: held
  out.write("signal_request", "int_pty", signal("ex-1x", 2));
  out.write("signal_request", "zero", signal("ex-1", 0));
  out.write("signal_request", "huge", signal("ex-1", 1 << 30));
  edges(out, "signal_request", wire::SignalRequestIdentifier());

  auto resize = [&](const std::string& id, uint16_t rows, uint16_t cols) {
    return built([&](flatbuffers::FlatBufferBuilder& fbb) {
      auto i = fbb.CreateString(id);
      fbb.Finish(wire::CreateResizeRequest(fbb, i, rows, cols), wire::ResizeRequestIdentifier());
    });
  };
  out.write("resize_request", "pty", resize("ex-1x", 50, 200));
  out.write("resize_request", "not_pty", resize("ex-1", 24, 80));
  out.write("resize_request", "zero", resize("ex-1x", 0, 0));
  edges(out, "resize_request", wire::ResizeRequestIdentifier());

  auto usage = [&](const std::string& id) {
    return built([&](flatbuffers::FlatBufferBuilder& fbb) {
      auto i = fbb.CreateString(id);
      fbb.Finish(wire::CreateUsageRequest(fbb, i), wire::UsageRequestIdentifier());
    });
  };
  out.write("usage_request", "all", usage(""));
  out.write("usage_request", "one", usage("sb-00000000000000000000000000000001"));
  edges(out, "usage_request", wire::UsageRequestIdentifier());

  // fs_request: the first byte picks the op (read, write, list, stat, mkdir, remove, unknown).
  out.write("fs_request", "read", with_op(0, fs_request("/etc/hostname", 0, 0, "", false, false, false, false, 0)));
  out.write("fs_request", "read_range", with_op(0, fs_request("/var/log/big", 4096, 65536, "", false, false, false, false, 0)));
  out.write("fs_request", "read_too_long", with_op(0, fs_request("/f", 0, cfg.fs_max_read_bytes + 1, "", false, false, false, false, 0)));
  out.write("fs_request", "write", with_op(1, fs_request("/tmp/a.txt", 0, 0, "hello\n", true, false, false, false, 0600)));
  out.write("fs_request", "append", with_op(1, fs_request("/tmp/a.txt", 0, 0, "more\n", false, true, false, false, 0)));
  out.write("fs_request", "list", with_op(2, fs_request("/usr/lib", 0, 0, "", false, false, false, false, 0)));
  out.write("fs_request", "list_page", with_op(2, fs_request("/usr/lib", 100, 10, "", false, false, false, false, 0)));
  out.write("fs_request", "stat", with_op(3, fs_request("/", 0, 0, "", false, false, false, false, 0)));
  out.write("fs_request", "stat_missing", with_op(3, fs_request("/enoent", 0, 0, "", false, false, false, false, 0)));
  out.write("fs_request", "mkdir", with_op(4, fs_request("/tmp/x/y", 0, 0, "", false, false, true, false, 0700)));
  out.write("fs_request", "remove", with_op(5, fs_request("/tmp/x", 0, 0, "", false, false, false, true, 0)));
  out.write("fs_request", "unknown_op", with_op(6, fs_request("/", 0, 0, "", false, false, false, false, 0)));
  out.write("fs_request", "relative", with_op(0, fs_request("etc", 0, 0, "", false, false, false, false, 0)));

  // init_event: what the real init loop writes for the opening and a few commands (each event
  // payload a seed), FsResults of each op through the file operations, and edge cases.
  {
    spawn_args s;
    s.id = 10;
    s.argv = {"flood", "70000"};
    spawn_args bad = s;
    bad.id = 11;
    bad.argv = {"missing"};
    fs_call_args f;
    f.call_id = 1;
    f.op = wire::FsOp::read;
    f.path = "/srv/data";
    fs_call_args l = f;
    l.call_id = 2;
    l.op = wire::FsOp::list;
    fs_call_args st = f;
    st.call_id = 3;
    st.op = wire::FsOp::stat;
    fs_call_args missing = f;
    missing.path = "/enoent";
    const auto events = run_in_init({command_spawn(s), command_spawn(bad), command_stdin(1, "hey", true),
                                     command_signal(1, 9), command_fs_call(f), command_fs_call(l),
                                     command_fs_call(st), command_fs_call(missing)});
    int i = 0;
    for (const auto& e : events) {
      if (e.size() > 4096) continue;  // keep the seeds small: the flood's large outputs are left out
      out.write("init_event", "from_init_" + std::to_string(i++), e);
    }
    for (auto type : {wire::Event::HelloAck, wire::Event::Started, wire::Event::Output,
                      wire::Event::Exited, wire::Event::SpawnFailed, wire::Event::StdinWritten,
                      wire::Event::FsResult})
      out.write("init_event", std::string("no_table_") + wire::EnumNameEvent(type),
                event_without_table(type));
    edges(out, "init_event", wire::InitEventIdentifier());
  }

  // job: as corral sweep builds them (client/sweep/job.cpp build_job), and by hand for argv jobs.
  {
    sweep::options o;
    int n = 0;
    for (const char* line :
         {R"J({"id":"p1","language":"python","source":"print(1)","expected":"1"})J",
          R"J({"id":"p2","language":"javascript","source":"console.log(2)"})J",
          R"J({"id":"p3","language":"python","source":"def f(x): return x","tests":"assert f(1)==1"})J",
          R"J({"id":"p4","language":"python","source":"print(input())","stdin":"hi"})J"}) {
      auto parsed = sweep::parse_line(line, 1, 10'000);
      if (!parsed.prog) continue;
      out.write("job", "sweep_" + std::to_string(++n),
                sweep::build_job(*parsed.prog, "batch-1", sweep::job_id("batch-1", *parsed.prog), o));
    }
    auto job = [&](const std::string& id, const std::string& language, const strings& argv,
                   const std::vector<std::pair<std::string, std::string>>& files,
                   const wire::string_pairs& env, wire::Isolation iso) {
      return built([&](flatbuffers::FlatBufferBuilder& fbb) {
        auto jid = fbb.CreateString(id);
        auto bid = fbb.CreateString("batch-1");
        auto img = fbb.CreateString("");
        auto lang = fbb.CreateString(language);
        auto src = fbb.CreateString(language.empty() ? "" : id == "j13" ? "print('\xed\xa0\x80')" : "print('x')");
        auto a = vec_of(fbb, argv);
        const uint8_t in[] = {'4', '2', '\n'};
        auto stdin_data = fbb.CreateVector(in, sizeof in);
        std::vector<flatbuffers::Offset<wire::JobFile>> fs;
        for (const auto& [p, d] : files)
          fs.push_back(wire::CreateJobFile(fbb, fbb.CreateString(p),
                                           fbb.CreateVector(reinterpret_cast<const uint8_t*>(d.data()), d.size())));
        auto fv = fbb.CreateVector(fs);
        auto e = wire::build_pairs(fbb, env);
        fbb.Finish(wire::CreateJob(fbb, jid, bid, img, lang, src, a, stdin_data, fv, e, 5000, 500,
                                   256, iso, 4096),
                   wire::JobIdentifier());
      });
    };
    out.write("job", "argv_files_env", job("j1", "", {"sh", "run.sh"}, {{"run.sh", "echo hi\n"}, {"data/in.txt", "x"}},
                                           {{"MODE", "test"}}, wire::Isolation::fresh));
    out.write("job", "strict", job("j2", "python", {}, {}, {}, wire::Isolation::strict));
    out.write("job", "dotdot_path", job("j3", "", {"cat"}, {{"../escape", "x"}}, {}, wire::Isolation::fresh));
    out.write("job", "bad_language", job("j4", "ruby", {}, {}, {}, wire::Isolation::fresh));
    out.write("job", "bad_env", job("j5", "", {"env"}, {}, {{"A=B", "1"}}, wire::Isolation::fresh));
    out.write("job", "bad_id", job("j 6", "", {"true"}, {}, {}, wire::Isolation::fresh));
    // Bytes that are not UTF-8 in each text field: JSON would carry them changed.
    out.write("job", "non_utf8_path", job("j10", "", {"sh"}, {{"in.\xf4xt", "x"}}, {}, wire::Isolation::fresh));
    out.write("job", "non_utf8_argv", job("j11", "", {"echo", "caf\xe9"}, {}, {}, wire::Isolation::fresh));
    out.write("job", "non_utf8_env", job("j12", "", {"env"}, {}, {{"K", "\xc0\xaf"}}, wire::Isolation::fresh));
    out.write("job", "non_utf8_source", job("j13", "python", {}, {}, {}, wire::Isolation::fresh));
    // One string, file or pair referenced many times: the buffer verifies (FlatBuffers lets
    // offsets share their target) while what it decodes to is many times its size.
    out.write("job", "shared_argv", built([&](flatbuffers::FlatBufferBuilder& fbb) {
                auto big = fbb.CreateString(std::string(4096, 'a'));
                std::vector<flatbuffers::Offset<flatbuffers::String>> argv(2000, big);
                auto a = fbb.CreateVector(argv);
                auto jid = fbb.CreateString("j7");
                auto bid = fbb.CreateString("batch-1");
                wire::JobBuilder b(fbb);
                b.add_job_id(jid);
                b.add_batch_id(bid);
                b.add_argv(a);
                fbb.Finish(b.Finish(), wire::JobIdentifier());
              }));
    out.write("job", "shared_env", built([&](flatbuffers::FlatBufferBuilder& fbb) {
                auto kv = wire::CreateKeyValue(fbb, fbb.CreateString("K"),
                                               fbb.CreateString(std::string(4096, 'v')));
                std::vector<flatbuffers::Offset<wire::KeyValue>> env(2000, kv);
                auto e = fbb.CreateVector(env);
                auto a = vec_of(fbb, {"env"});
                auto jid = fbb.CreateString("j8");
                auto bid = fbb.CreateString("batch-1");
                wire::JobBuilder b(fbb);
                b.add_job_id(jid);
                b.add_batch_id(bid);
                b.add_argv(a);
                b.add_env(e);
                fbb.Finish(b.Finish(), wire::JobIdentifier());
              }));
    out.write("job", "shared_files", built([&](flatbuffers::FlatBufferBuilder& fbb) {
                auto data = fbb.CreateVector(std::vector<uint8_t>(32768, 7));
                std::vector<flatbuffers::Offset<wire::JobFile>> files;
                for (int i = 0; i < 64; ++i)
                  files.push_back(wire::CreateJobFile(fbb, fbb.CreateString("f" + std::to_string(i)), data));
                auto f = fbb.CreateVector(files);
                auto a = vec_of(fbb, {"ls"});
                auto jid = fbb.CreateString("j9");
                auto bid = fbb.CreateString("batch-1");
                wire::JobBuilder b(fbb);
                b.add_job_id(jid);
                b.add_batch_id(bid);
                b.add_argv(a);
                b.add_files(f);
                fbb.Finish(b.Finish(), wire::JobIdentifier());
              }));
    edges(out, "job", wire::JobIdentifier());
  }

  // guest_frames: byte 0 seeds where the stream is cut; frames as encode_frame makes them.
  {
    auto stream = [](uint8_t cut, std::vector<nlohmann::json> frames, const std::string& tail) {
      bytes s{cut};
      for (const auto& j : frames) {
        const auto f = jobs::encode_frame(j);
        s.insert(s.end(), f.begin(), f.end());
      }
      s.insert(s.end(), tail.begin(), tail.end());
      return s;
    };
    const nlohmann::json answer = {{"id", "j1"},          {"outcome", "exited"},
                                   {"exit_code", 0},      {"signal", 0},
                                   {"completed", true},   {"stdout", "aGkK"},
                                   {"stderr", ""},        {"stdout_bytes", 3},
                                   {"wall_ms", 12},       {"maxrss_kib", 9000}};
    out.write("guest_frames", "ready", stream(1, {{{"ready", true}}}, ""));
    out.write("guest_frames", "answer", stream(2, {answer}, ""));
    out.write("guest_frames", "two_answers", stream(3, {answer, answer}, ""));
    out.write("guest_frames", "partial", stream(4, {answer}, "CRZ1 100\n{\"id\""));
    out.write("guest_frames", "bad_header", stream(5, {}, "CRZX 2\n{}"));
    out.write("guest_frames", "too_long", stream(6, {}, "CRZ1 99999999999\n"));
    out.write("guest_frames", "not_json", stream(7, {}, "CRZ1 3\nabc"));
    out.write("guest_frames", "not_object", stream(8, {}, "CRZ1 2\n[]"));
  }

  // -- replies the clients read -------------------------------------------------------------
  out.write("ack", "empty", wire::make_ack());
  out.write("ack", "more", wire::make_page_end(true, 0, "more"));
  out.write("ack", "results_page", wire::make_page_end(false, 42, "done 42"));
  out.write("ack", "done", wire::make_ack("done"));
  out.write("ack", "error", wire::make_error_reply(wire::ErrorCode::expired, "expired", "exec_id"));
  out.write("ack", "chunk", output_chunk("ex-1", 0, wire::Stream::stdout, 0, "x"));
  edges(out, "ack", wire::AckIdentifier());

  out.write("error_reply", "not_found", wire::make_error_reply(wire::ErrorCode::not_found, "no such sandbox", "id"));
  out.write("error_reply", "too_large", wire::make_error_reply(wire::ErrorCode::too_large, "data: over the cap", "data"));
  out.write("error_reply", "unknown_code", wire::make_error_reply(static_cast<wire::ErrorCode>(999), "?"));
  edges(out, "error_reply", wire::ErrorReplyIdentifier());

  auto done = a_process(true);
  out.write("exec_exit", "exited", make_exec_exit(done));
  done.outcome = wire::Outcome::signaled;
  done.signal = 9;
  done.exit_code = 137;
  done.message = "killed";
  out.write("exec_exit", "signaled", make_exec_exit(done));
  done.next_seq = 1;
  out.write("exec_exit", "first", make_exec_exit(done));
  edges(out, "exec_exit", wire::ExecExitIdentifier());

  out.write("exec_reply", "new", make_exec_reply(a_process(false), false));
  out.write("exec_reply", "reattached_finished", make_exec_reply(a_process(true), true));
  edges(out, "exec_reply", wire::ExecReplyIdentifier());

  out.write("output_chunk", "seq1", output_chunk("ex-1", 1, wire::Stream::stdout, 6, "world\n"));
  out.write("output_chunk", "seq0", output_chunk("ex-1", 0, wire::Stream::stdout, 0, "hello "));
  out.write("output_chunk", "ahead", output_chunk("ex-1", 7, wire::Stream::stderr, 100, "late"));
  out.write("output_chunk", "exit_early", make_exec_exit(a_process(true)));
  edges(out, "output_chunk", wire::OutputChunkIdentifier());

  // FsReply: the file operations' own answers to FsResults from the real init loop.
  {
    file_ops_harness h;
    for (const auto& [op, path] : std::vector<std::pair<std::string, std::string>>{
             {"read", "/srv/data"}, {"list", "/usr/lib"}, {"stat", "/"}, {"read", "/enoent"}}) {
      const auto req = fs_request(path, 0, 4096, "", false, false, false, false, 0);
      h.request(op, req.data(), req.size());
    }
    for (const auto& payload : run_in_init(h.link.sent)) {
      const auto* ev = wire::verify<wire::InitEvent>(payload.data(), payload.size());
      if (ev != nullptr) (void)h.files.on_event(h.ctx, *ev);
    }
    int i = 0;
    for (const auto& [subject, reply] : h.out.published)
      if (reply.size() <= 8192) out.write("fs_reply", "from_file_ops_" + std::to_string(i++), reply);
    edges(out, "fs_reply", wire::FsReplyIdentifier());
  }

  auto sb = a_sandbox();
  out.write("sandbox_reply", "running", make_sandbox_reply(sb));
  sb.state = wire::SandboxState::exited;
  sb.has_return_code = true;
  sb.return_code = 3;
  sb.ended_at_ms = 1'700'000'100'000;
  sb.message = "exited";
  out.write("sandbox_reply", "exited", make_sandbox_reply(sb));
  out.write("sandbox_reply", "shared_tags", built([&](flatbuffers::FlatBufferBuilder& fbb) {
              auto kv = wire::CreateKeyValue(fbb, fbb.CreateString("k"),
                                             fbb.CreateString(std::string(2048, 'v')));
              std::vector<flatbuffers::Offset<wire::KeyValue>> tags(2000, kv);
              auto t = fbb.CreateVector(tags);
              auto id = fbb.CreateString("sb-0123456789abcdef0123456789abcdef");
              wire::SandboxInfoBuilder ib(fbb);
              ib.add_id(id);
              ib.add_tags(t);
              auto info = ib.Finish();
              fbb.Finish(wire::CreateSandboxReply(fbb, info), wire::SandboxReplyIdentifier());
            }));
  edges(out, "sandbox_reply", wire::SandboxReplyIdentifier());

  out.write("sandbox_list", "two", built([&](flatbuffers::FlatBufferBuilder& fbb) {
              std::vector<flatbuffers::Offset<wire::SandboxInfo>> infos{
                  build_sandbox_info(fbb, a_sandbox()), build_sandbox_info(fbb, sb)};
              auto node = fbb.CreateString("node-1");
              auto v = fbb.CreateVector(infos);
              fbb.Finish(wire::CreateSandboxList(fbb, node, v), wire::SandboxListIdentifier());
            }));
  out.write("sandbox_list", "none", built([&](flatbuffers::FlatBufferBuilder& fbb) {
              auto node = fbb.CreateString("node-1");
              fbb.Finish(wire::CreateSandboxList(fbb, node), wire::SandboxListIdentifier());
            }));
  out.write("sandbox_list", "shared_info", built([&](flatbuffers::FlatBufferBuilder& fbb) {
              auto big = a_sandbox();
              big.message = std::string(2048, 'm');
              std::vector<flatbuffers::Offset<wire::SandboxInfo>> infos(2000, build_sandbox_info(fbb, big));
              auto node = fbb.CreateString("node-1");
              auto v = fbb.CreateVector(infos);
              fbb.Finish(wire::CreateSandboxList(fbb, node, v), wire::SandboxListIdentifier());
            }));
  edges(out, "sandbox_list", wire::SandboxListIdentifier());

  out.write("usage_reply", "two", built([&](flatbuffers::FlatBufferBuilder& fbb) {
              std::vector<flatbuffers::Offset<wire::SandboxUsage>> items;
              for (const char* id : {"sb-00000000000000000000000000000001", "sb-00000000000000000000000000000002"})
                items.push_back(wire::CreateSandboxUsage(fbb, fbb.CreateString(id),
                                                         wire::CreateUsageAmount(fbb, 1.5, 0.25, 0.01)));
              auto node = fbb.CreateString("node-1");
              auto v = fbb.CreateVector(items);
              auto total = wire::CreateUsageAmount(fbb, 3, 0.5, 0.02);
              fbb.Finish(wire::CreateUsageReply(fbb, node, v, total), wire::UsageReplyIdentifier());
            }));
  out.write("usage_reply", "long_node", built([&](flatbuffers::FlatBufferBuilder& fbb) {
              std::vector<flatbuffers::Offset<wire::SandboxUsage>> items;
              for (int i = 0; i < 500; ++i)
                items.push_back(wire::CreateSandboxUsage(fbb, fbb.CreateString("sb-" + std::to_string(i))));
              auto node = fbb.CreateString(std::string(4096, 'n'));
              auto v = fbb.CreateVector(items);
              fbb.Finish(wire::CreateUsageReply(fbb, node, v), wire::UsageReplyIdentifier());
            }));
  edges(out, "usage_reply", wire::UsageReplyIdentifier());

  out.write("heartbeat", "node", built([&](flatbuffers::FlatBufferBuilder& fbb) {
              auto node = fbb.CreateString("node-1");
              auto pool = fbb.CreateString("default");
              auto tags = wire::build_pairs(fbb, {{"gpu", "H100"}});
              fbb.Finish(wire::CreateHeartbeat(fbb, node, pool, 8, 3, 1'700'000'000'000, tags, 2),
                         wire::HeartbeatIdentifier());
            }));
  edges(out, "heartbeat", wire::HeartbeatIdentifier());

  // JobResult: the runner's own (unrun_result) and one of a run job, as build_result makes it.
  out.write("job_result", "rejected", jobs::unrun_result("j1", "batch-1", wire::Outcome::rejected,
                                                         "argv: empty (and no language)", "node-1", 1));
  out.write("job_result", "lost", jobs::unrun_result("j2", "batch-1", wire::Outcome::executor_lost,
                                                     "delivered 4 times", "node-1", 4));
  out.write("job_result", "passed", built([&](flatbuffers::FlatBufferBuilder& fbb) {
              auto job = fbb.CreateString("j3");
              auto batch = fbb.CreateString("batch-1");
              auto msg = fbb.CreateString("");
              auto status = wire::CreateExitStatus(fbb, wire::Outcome::exited, 0, 0, msg, 6, 0);
              const uint8_t text[] = {'h', 'e', 'l', 'l', 'o', '\n', 0xff};
              auto o = fbb.CreateVector(text, sizeof text);
              auto node = fbb.CreateString("node-1");
              wire::JobResultBuilder b(fbb);
              b.add_job_id(job);
              b.add_batch_id(batch);
              b.add_status(status);
              b.add_completed(true);
              b.add_stdout(o);
              b.add_node(node);
              b.add_attempt(1);
              b.add_wall_ms(40);
              fbb.Finish(b.Finish(), wire::JobResultIdentifier());
            }));
  edges(out, "job_result", wire::JobResultIdentifier());
}

}  // namespace corral::fuzz
