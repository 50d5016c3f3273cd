#include "bus/jetstream.hpp"

#include <algorithm>
#include <cstdlib>
#include <chrono>
#include <climits>
#include <utility>

#include "bus/connection_internal.hpp"

namespace corral::bus {

namespace {

using internal::connection_access;

// nats.c's default JetStream API prefix: the reader's consumer is deleted by a request on it.
constexpr const char* js_api_prefix = "$JS.API";

// Durations go to nats.c (and the server) in nanoseconds in an int64_t.
constexpr int64_t max_duration_ms = INT64_MAX / 1000000;

status ok() { return status{}; }

status fail(wire::ErrorCode e, std::string detail) { return failure(e, std::move(detail)); }

template <class T>
result<T> fail_as(const status& s) {
  return result<T>(s);
}

// JetStream API error codes that mean "the request is wrong for what exists": an unknown
// stream or consumer, a configuration the server refuses or cannot apply. Anything else the API
// answers (resources, storage, cluster state) is io.
bool refused_argument(jsErrCode jerr) {
  switch (jerr) {
    case JSConsumerCreateErr:
    case JSConsumerNameExistErr:
    case JSConsumerNotFoundErr:
    case JSConsumerDurableNameNotInSubjectErr:
    case JSConsumerDurableNameNotMatchSubjectErr:
    case JSConsumerDurableNameNotSetErr:
    case JSConsumerEphemeralWithDurableInSubjectErr:
    case JSConsumerEphemeralWithDurableNameErr:
    case JSStreamInvalidConfig:
    case JSStreamMessageExceedsMaximumErr:
    case JSStreamMirrorNotUpdatableErr:
    case JSStreamMismatchErr:
    case JSStreamNameExistErr:
    case JSStreamNotFoundErr:
    case JSStreamNotMatchErr:
    case JSStreamReplicasNotUpdatableErr:
    case JSStreamSubjectOverlapErr:
    case JSStreamUpdateErr:
    case JSStreamReplicasNotSupportedErr:
    case JSConsumerConfigRequiredErr:
    case JSConsumerMaxPendingAckPolicyRequiredErr:
    case JSConsumerPullRequiresAckErr:
    case JSConsumerFilterNotSubsetErr:
    case JSConsumerInvalidPolicyErr:
    case JSConsumerWQRequiresExplicitAckErr:
    case JSConsumerWQMultipleUnfilteredErr:
    case JSConsumerWQConsumerNotUniqueErr:
    case JSConsumerWQConsumerNotDeliverAllErr:
    case JSConsumerNameTooLongErr:
    case JSConsumerBadDurableNameErr:
    case JSConsumerExistingActiveErr:
    case JSConsumerReplacementWithDifferentNameErr:
    case JSStreamSealedErr:
    case JSConsumerMaxRequestBatchNegativeErr:
    case JSConsumerMaxRequestExpiresToSmallErr:
    case JSConsumerMaxDeliverBackoffErr:
    case JSConsumerMaxPendingAckExcessErr:
    case JSStreamMaxStreamBytesExceededErr:
    case JSConsumerReplicasExceedsStreamErr:
      return true;
    default:
      return false;
  }
}

// A nats.c JetStream failure. Must be called right after the failing call, on its thread: the
// detail includes nats.c's per-thread last error, which carries the server's description.
status js_fail(natsStatus s, jsErrCode jerr, const std::string& what) {
  if (s == NATS_OK) return ok();
  std::string d = internal::describe_status(s, what.c_str());
  if (jerr != 0) d += " [err_code " + std::to_string(static_cast<int>(jerr)) + "]";
  wire::ErrorCode e = internal::classify_status(s);
  // nats.c 3.4 reports "no responders" with err_code 10076 (JetStream not enabled) attached:
  // the status decides, so that it stays no_responders.
  if (s != NATS_NO_RESPONDERS && jerr != 0)
    e = refused_argument(jerr) ? errc::invalid : errc::io;
  return fail(e, std::move(d));
}

std::string quoted(const std::string& s) {
  std::string d = "\"";
  d.append(s, 0, std::min<std::size_t>(s.size(), 128));
  d += s.size() > 128 ? "...\"" : "\"";
  return d;
}

// Stream and consumer names: they become a token of the JetStream API's subjects and a
// directory of the server's store.
status check_name(const std::string& name, const char* what) {
  bool good = !name.empty() && name.size() <= max_name_bytes;
  for (char c : name) {
    bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '_';
    if (!allowed) good = false;
  }
  if (good) return ok();
  return fail(errc::invalid, std::string("invalid ") + what + " " + quoted(name) + " (1.." +
                                      std::to_string(max_name_bytes) +
                                      " bytes of letters, digits, '-' and '_')");
}

status check_timeout(int64_t timeout_ms) {
  if (timeout_ms <= 0 || timeout_ms > max_duration_ms)
    return fail(errc::invalid, "timeout must be > 0 ms");
  return ok();
}

status check_duration(int64_t ms, const char* what, bool zero_allowed) {
  if (ms < 0 || ms > max_duration_ms || (ms == 0 && !zero_allowed))
    return fail(errc::invalid, std::string(what) +
                                        (zero_allowed ? " must be >= 0" : " must be > 0") +
                                        " and at most " + std::to_string(max_duration_ms) + " ms");
  return ok();
}

int64_t nanos(int64_t ms) { return ms * 1000000; }

jsOptions api_options(int64_t timeout_ms) {
  jsOptions o;
  jsOptions_Init(&o);
  o.Wait = timeout_ms;
  return o;
}

// --- shared state -------------------------------------------------------------------------------

// The nats.c JetStream context, shared by the jetstream object and the consumers made from it
// (which may outlive it; pull subscriptions also keep their own nats.c reference to it).
struct js_context {
  connection* conn = nullptr;
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  js_context() = default;
  js_context(const js_context&) = delete;
  js_context& operator=(const js_context&) = delete;
  ~js_context() {
    if (js != nullptr) jsCtx_Destroy(js);
  }
};

// The nats.c pull subscription, shared by the pull_consumer and every message it fetched that
// still needs an acknowledgement: nats.c acks through the message's subscription (natsMsg keeps
// a plain pointer to it), so the subscription is freed only once the last of them is gone.
struct subscription_core {
  std::shared_ptr<js_context> ctx;
  natsSubscription* sub = nullptr;
  subscription_core() = default;
  subscription_core(const subscription_core&) = delete;
  subscription_core& operator=(const subscription_core&) = delete;
  ~subscription_core() {
    if (sub == nullptr) return;
    // Idempotent in effect: fails (ignored) when pull_consumer unsubscribed already. Through the
    // reaper, never natsSubscription_Destroy: see connection_internal.hpp.
    (void)natsSubscription_Unsubscribe(sub);
    connection_access::retire(*ctx->conn, sub);
  }
};

}  // namespace

// --- js_message ---------------------------------------------------------------------------------

struct js_message::impl {
  std::shared_ptr<subscription_core> core;  // declared first: released after msg is destroyed
  natsMsg* msg = nullptr;                   // null when no acknowledgement is needed (reader)
  std::string subject;
  std::vector<uint8_t> data;
  std::string msg_id;
  uint64_t stream_sequence = 0;
  uint64_t num_delivered = 0;
  int64_t timestamp_ms = 0;
  enum class settled { no, acked, naked, termed } state = settled::no;

  impl() = default;
  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;
  ~impl() {
    if (msg != nullptr) natsMsg_Destroy(msg);
  }

  // Settling twice the same way is a no-op; settling differently is refused: nats.c would
  // silently ignore it (it skips every acknowledgement of a message once one was sent), and
  // e.g. an ack() after a nak() must not report a success that did not happen.
  status check_settle(settled wanted, const char* what) const {
    if (state == settled::no || state == wanted) return ok();
    const char* done = state == settled::acked   ? "ack()"
                       : state == settled::naked ? "nak()"
                                                 : "term()";
    return fail(errc::invalid,
                std::string(what) + " after " + done + ": the message was settled already");
  }
};

namespace {

const std::string empty_string;
const std::vector<uint8_t> empty_bytes;

}  // namespace

js_message::js_message() = default;
js_message::~js_message() = default;
js_message::js_message(js_message&&) noexcept = default;
js_message& js_message::operator=(js_message&&) noexcept = default;

const std::string& js_message::subject() const { return impl_ ? impl_->subject : empty_string; }
const std::vector<uint8_t>& js_message::data() const { return impl_ ? impl_->data : empty_bytes; }
const std::string& js_message::msg_id() const { return impl_ ? impl_->msg_id : empty_string; }
uint64_t js_message::stream_sequence() const { return impl_ ? impl_->stream_sequence : 0; }
uint64_t js_message::num_delivered() const { return impl_ ? impl_->num_delivered : 0; }
int64_t js_message::timestamp_ms() const { return impl_ ? impl_->timestamp_ms : 0; }

status js_message::ack(int64_t timeout_ms) {
  if (!impl_) return fail(errc::invalid, "ack() of an empty message");
  if (status s = check_timeout(timeout_ms); !s) return s;
  if (status s = impl_->check_settle(impl::settled::acked, "ack()"); !s) return s;
  if (impl_->msg == nullptr || impl_->state == impl::settled::acked) return ok();
  jsOptions o = api_options(timeout_ms);
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = natsMsg_AckSync(impl_->msg, &o, &jerr);
  if (s != NATS_OK)
    return js_fail(s, jerr, "ack of stream sequence " + std::to_string(impl_->stream_sequence));
  impl_->state = impl::settled::acked;
  return ok();
}

status js_message::nak(int64_t delay_ms) {
  if (!impl_) return fail(errc::invalid, "nak() of an empty message");
  if (status s = check_duration(delay_ms, "nak delay", true); !s) return s;
  if (status s = impl_->check_settle(impl::settled::naked, "nak()"); !s) return s;
  if (impl_->msg == nullptr || impl_->state == impl::settled::naked) return ok();
  natsStatus s = delay_ms > 0 ? natsMsg_NakWithDelay(impl_->msg, delay_ms, nullptr)
                              : natsMsg_Nak(impl_->msg, nullptr);
  if (s != NATS_OK) return js_fail(s, static_cast<jsErrCode>(0), "nak");
  impl_->state = impl::settled::naked;
  return ok();
}

status js_message::in_progress() {
  if (!impl_) return fail(errc::invalid, "in_progress() of an empty message");
  if (status s = impl_->check_settle(impl::settled::no, "in_progress()"); !s) return s;
  if (impl_->msg == nullptr) return ok();
  return js_fail(natsMsg_InProgress(impl_->msg, nullptr), static_cast<jsErrCode>(0), "in_progress");
}

status js_message::term() {
  if (!impl_) return fail(errc::invalid, "term() of an empty message");
  if (status s = impl_->check_settle(impl::settled::termed, "term()"); !s) return s;
  if (impl_->msg == nullptr || impl_->state == impl::settled::termed) return ok();
  natsStatus s = natsMsg_Term(impl_->msg, nullptr);
  if (s != NATS_OK) return js_fail(s, static_cast<jsErrCode>(0), "term");
  impl_->state = impl::settled::termed;
  return ok();
}

// --- pull_consumer ------------------------------------------------------------------------------

struct pull_consumer::impl {
  std::shared_ptr<subscription_core> core;
  std::string stream;
  std::string consumer;
  bool needs_ack = true;   // false for a reader (ack policy none)
  bool ephemeral = false;  // a reader's consumer: deleted when the pull_consumer is destroyed
  std::chrono::milliseconds check_interval{5000};
  // Last time the consumer was known to exist: bound, a message fetched, or a check answered.
  // Touched by the fetching thread only.
  std::chrono::steady_clock::time_point last_seen = std::chrono::steady_clock::now();

  // nats.c 3.4 cannot tell a deleted consumer from an empty one: the server's own interest in
  // $JS.API.> swallows the pull request, so no "no responders" comes back and the fetch just
  // times out, forever. So while fetches find nothing, ask whether it still exists.
  status check_exists(int64_t timeout_ms) {
    jsOptions o = api_options(timeout_ms);
    jsConsumerInfo* ci = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s =
        js_GetConsumerInfo(&ci, core->ctx->js, stream.c_str(), consumer.c_str(), &o, &jerr);
    if (ci != nullptr) jsConsumerInfo_Destroy(ci);
    if (s == NATS_OK) {
      last_seen = std::chrono::steady_clock::now();
      return ok();
    }
    status st = js_fail(s, jerr, "consumer info of " + stream + "/" + consumer);
    if (jerr == JSConsumerNotFoundErr || jerr == JSStreamNotFoundErr) {
      st.message = "consumer " + stream + "/" + consumer + " no longer exists (deleted" +
                   (ephemeral ? ", or idle past its inactive threshold" : "") + "): " + st.message;
    }
    return st;
  }
};

pull_consumer::pull_consumer(std::unique_ptr<impl> i) : impl_(std::move(i)) {}

pull_consumer::~pull_consumer() {
  subscription_core& core = *impl_->core;
  // Stop pulling now; the subscription itself lives on while fetched messages may still ack.
  (void)natsSubscription_Unsubscribe(core.sub);
  if (impl_->ephemeral) {
    // Delete the reader's consumer without waiting for the answer (a destructor does not wait
    // on the network). Should this be lost, the server deletes it after its inactive threshold.
    std::string subject =
        std::string(js_api_prefix) + ".CONSUMER.DELETE." + impl_->stream + "." + impl_->consumer;
    std::string reply = core.ctx->conn->new_inbox();
    if (!reply.empty()) {
      (void)natsConnection_PublishRequest(core.ctx->nc, subject.c_str(), reply.c_str(), nullptr, 0);
    }
  }
}

result<std::vector<js_message>> pull_consumer::fetch(int batch, int64_t timeout_ms) {
  return fetch_some(batch, timeout_ms, false);
}

result<std::vector<js_message>> pull_consumer::fetch_now(int batch, int64_t timeout_ms) {
  return fetch_some(batch, timeout_ms, true);
}

result<std::vector<js_message>> pull_consumer::fetch_some(int batch, int64_t timeout_ms,
                                                          bool no_wait) {
  using out = std::vector<js_message>;
  if (batch <= 0 || batch > max_fetch_batch)
    return fail_as<out>(
        fail(errc::invalid, "fetch batch must be in 1.." + std::to_string(max_fetch_batch)));
  if (status s = check_timeout(timeout_ms); !s) return fail_as<out>(s);

  const auto start = std::chrono::steady_clock::now();
  if (start - impl_->last_seen >= impl_->check_interval) {
    if (status st = impl_->check_exists(timeout_ms); !st) return fail_as<out>(st);
    auto spent = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - start)
                     .count();
    if (spent >= timeout_ms) return out{};  // nothing now, and no time left to wait
    timeout_ms -= spent;
  }

  natsMsgList list{nullptr, 0};
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s;
  if (no_wait) {
    jsFetchRequest req;
    jsFetchRequest_Init(&req);
    req.Batch = batch;
    req.NoWait = true;
    req.Expires = nanos(timeout_ms);
    s = natsSubscription_FetchRequest(&list, impl_->core->sub, &req);
    if (s == NATS_NOT_FOUND) s = NATS_TIMEOUT;  // the server's "no messages" to a no-wait pull
  } else {
    s = natsSubscription_Fetch(&list, impl_->core->sub, batch, timeout_ms, &jerr);
  }
  status st;
  if (s != NATS_OK && s != NATS_TIMEOUT)
    st = js_fail(s, jerr, "fetch from " + impl_->stream + "/" + impl_->consumer);
  // NATS_TIMEOUT: nothing arrived in time, the normal "nothing now". Messages in the list are
  // ours whatever the status (nats.c fills it only on success, but never leak one: on an error
  // they are dropped unacknowledged, so the server delivers them again).
  out fetched;
  fetched.reserve(static_cast<std::size_t>(list.Count > 0 ? list.Count : 0));
  for (int k = 0; k < list.Count; ++k) {
    natsMsg* m = list.Msgs[k];
    if (m == nullptr) continue;
    list.Msgs[k] = nullptr;  // ours now; natsMsgList_Destroy skips it
    auto mi = std::make_unique<js_message::impl>();
    if (const char* subj = natsMsg_GetSubject(m)) mi->subject = subj;
    const char* bytes = natsMsg_GetData(m);
    int len = natsMsg_GetDataLength(m);
    if (bytes != nullptr && len > 0) {
      const auto* b = reinterpret_cast<const uint8_t*>(bytes);
      mi->data.assign(b, b + len);
    }
    const char* id = nullptr;
    if (natsMsgHeader_Get(m, "Nats-Msg-Id", &id) == NATS_OK && id != nullptr) mi->msg_id = id;
    jsMsgMetaData* meta = nullptr;
    if (natsMsg_GetMetaData(&meta, m) == NATS_OK && meta != nullptr) {
      mi->stream_sequence = meta->Sequence.Stream;
      mi->num_delivered = meta->NumDelivered;
      mi->timestamp_ms = meta->Timestamp / 1000000;
      jsMsgMetaData_Destroy(meta);
    }
    if (impl_->needs_ack) {
      mi->core = impl_->core;
      mi->msg = m;
    } else {
      natsMsg_Destroy(m);  // nothing to acknowledge: keep only the copies
    }
    js_message jm;
    jm.impl_ = std::move(mi);
    fetched.push_back(std::move(jm));
  }
  natsMsgList_Destroy(&list);
  if (!st) return fail_as<out>(st);
  if (!fetched.empty()) impl_->last_seen = std::chrono::steady_clock::now();
  return fetched;
}

result<std::pair<uint64_t, uint64_t>> pull_consumer::pending(int64_t timeout_ms) {
  using out = std::pair<uint64_t, uint64_t>;
  if (status s = check_timeout(timeout_ms); !s) return fail_as<out>(s);
  jsOptions o = api_options(timeout_ms);
  jsConsumerInfo* ci = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetConsumerInfo(&ci, impl_->core->ctx->js, impl_->stream.c_str(),
                                    impl_->consumer.c_str(), &o, &jerr);
  if (s != NATS_OK) {
    if (ci != nullptr) jsConsumerInfo_Destroy(ci);
    return fail_as<out>(
        js_fail(s, jerr, "consumer info of " + impl_->stream + "/" + impl_->consumer));
  }
  out counts{ci->NumPending, ci->NumAckPending > 0 ? static_cast<uint64_t>(ci->NumAckPending) : 0};
  jsConsumerInfo_Destroy(ci);
  return counts;
}

// --- jetstream ----------------------------------------------------------------------------------

struct jetstream::impl {
  std::shared_ptr<js_context> ctx;

  // Binds a pull subscription to the existing consumer `consumer` of `stream`. Bound, not
  // created by js_PullSubscribe: nats.c deletes a consumer that its subscribe call created when
  // the subscription is unsubscribed, even a durable one, which would pull the durable from
  // under every other process sharing it.
  result<std::unique_ptr<pull_consumer>> bind(const std::string& stream,
                                              const std::string& consumer,
                                              const std::string& filter, bool needs_ack,
                                              bool ephemeral, int64_t check_interval_ms,
                                              int64_t timeout_ms) {
    using out = std::unique_ptr<pull_consumer>;
    jsOptions o = api_options(timeout_ms);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream.c_str();
    so.Consumer = consumer.c_str();
    so.ManualAck = true;
    natsSubscription* sub = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s = js_PullSubscribe(&sub, ctx->js, filter.empty() ? nullptr : filter.c_str(),
                                    nullptr, &o, &so, &jerr);
    if (s != NATS_OK)
      return fail_as<out>(js_fail(s, jerr, "bind to consumer " + stream + "/" + consumer));
    auto core = std::make_shared<subscription_core>();
    core->ctx = ctx;
    core->sub = sub;
    auto i = std::make_unique<pull_consumer::impl>();
    i->core = std::move(core);
    i->stream = stream;
    i->consumer = consumer;
    i->needs_ack = needs_ack;
    i->ephemeral = ephemeral;
    i->check_interval = std::chrono::milliseconds(check_interval_ms);
    return std::unique_ptr<pull_consumer>(new pull_consumer(std::move(i)));
  }

  status check_filter(const std::string& filter) const {
    if (filter.empty() ||
        valid_subject(filter, true, connection_access::max_subject_bytes(*ctx->conn)))
      return ok();
    return fail(errc::invalid, "invalid filter subject " + quoted(filter));
  }
};

jetstream::jetstream(std::unique_ptr<impl> i) : impl_(std::move(i)) {}

jetstream::~jetstream() = default;

std::unique_ptr<jetstream> jetstream::publisher(connection& conn, std::string* error,
                                                int64_t timeout_ms) {
  if (status s = check_timeout(timeout_ms); !s) {
    if (error != nullptr) *error = s.message;
    return nullptr;
  }
  auto ctx = std::make_shared<js_context>();
  ctx->conn = &conn;
  ctx->nc = connection_access::native(conn);
  jsOptions o = api_options(timeout_ms);
  if (natsStatus s = natsConnection_JetStream(&ctx->js, ctx->nc, &o); s != NATS_OK) {
    if (error != nullptr) *error = internal::describe_status(s, "JetStream context");
    return nullptr;
  }
  auto i = std::make_unique<impl>();
  i->ctx = std::move(ctx);
  return std::unique_ptr<jetstream>(new jetstream(std::move(i)));
}

std::unique_ptr<jetstream> jetstream::open(connection& conn, std::string* error,
                                           int64_t timeout_ms, const std::string& probe_stream) {
  auto set_error = [error](std::string e) {
    if (error != nullptr) *error = std::move(e);
  };
  if (status s = check_timeout(timeout_ms); !s) {
    set_error(s.message);
    return nullptr;
  }
  auto ctx = std::make_shared<js_context>();
  ctx->conn = &conn;
  ctx->nc = connection_access::native(conn);
  jsOptions o = api_options(timeout_ms);
  natsStatus s = natsConnection_JetStream(&ctx->js, ctx->nc, &o);
  if (s != NATS_OK) {
    set_error(internal::describe_status(s, "JetStream context"));
    return nullptr;
  }
  // A context is local state: ask the server whether it has JetStream at all.
  jsErrCode jerr = static_cast<jsErrCode>(0);
  if (probe_stream.empty()) {
    jsAccountInfo* ai = nullptr;
    s = js_GetAccountInfo(&ai, ctx->js, &o, &jerr);
    if (ai != nullptr) jsAccountInfo_Destroy(ai);
  } else {
    jsStreamInfo* si = nullptr;
    s = js_GetStreamInfo(&si, ctx->js, probe_stream.c_str(), &o, &jerr);
    if (si != nullptr) jsStreamInfo_Destroy(si);
  }
  if (s != NATS_OK) {
    status st = js_fail(s, jerr, probe_stream.empty() ? "JetStream account info"
                                                      : "JetStream stream " + probe_stream);
    if (st.code == errc::no_responders) st.message += " (is JetStream enabled on the server?)";
    set_error(std::move(st.message));
    return nullptr;
  }
  auto i = std::make_unique<impl>();
  i->ctx = std::move(ctx);
  return std::unique_ptr<jetstream>(new jetstream(std::move(i)));
}

status jetstream::ensure_stream(const stream_config& cfg, int64_t timeout_ms) {
  if (status s = check_timeout(timeout_ms); !s) return s;
  if (status s = check_name(cfg.name, "stream name"); !s) return s;
  if (cfg.subjects.empty()) return fail(errc::invalid, "a stream needs at least one subject");
  const std::size_t max_subject = connection_access::max_subject_bytes(*impl_->ctx->conn);
  for (const auto& subject : cfg.subjects) {
    if (!valid_subject(subject, true, max_subject))
      return fail(errc::invalid, "invalid stream subject " + quoted(subject));
  }
  if (status s = check_duration(cfg.duplicate_window_ms, "duplicate_window_ms", false); !s)
    return s;
  if (status s = check_duration(cfg.max_age_ms, "max_age_ms", true); !s) return s;
  if (cfg.max_age_ms > 0 && cfg.duplicate_window_ms > cfg.max_age_ms)
    return fail(errc::invalid, "duplicate_window_ms must not exceed max_age_ms");
  if (cfg.max_bytes == 0 || cfg.max_bytes < -1)
    return fail(errc::invalid, "max_bytes must be -1 or > 0");
  if (cfg.max_msgs == 0 || cfg.max_msgs < -1)
    return fail(errc::invalid, "max_msgs must be -1 or > 0");
  if (cfg.max_msg_size == 0 || cfg.max_msg_size < -1)
    return fail(errc::invalid, "max_msg_size must be -1 or > 0");
  if (cfg.replicas < 1 || cfg.replicas > 5)
    return fail(errc::invalid, "replicas must be in 1..5");

  std::vector<const char*> subjects;
  subjects.reserve(cfg.subjects.size());
  for (const auto& subject : cfg.subjects) subjects.push_back(subject.c_str());
  jsStreamConfig sc;
  jsStreamConfig_Init(&sc);
  sc.Name = cfg.name.c_str();
  sc.Subjects = subjects.data();
  sc.SubjectsLen = static_cast<int>(subjects.size());
  sc.Retention = cfg.work_queue ? js_WorkQueuePolicy : js_LimitsPolicy;
  sc.Storage = cfg.file_storage ? js_FileStorage : js_MemoryStorage;
  sc.Duplicates = nanos(cfg.duplicate_window_ms);
  sc.MaxAge = nanos(cfg.max_age_ms);
  sc.MaxBytes = cfg.max_bytes;
  sc.MaxMsgs = cfg.max_msgs;
  sc.MaxMsgSize = cfg.max_msg_size;
  sc.Replicas = cfg.replicas;
  sc.Discard = cfg.discard_new ? js_DiscardNew : js_DiscardOld;
  sc.AllowDirect = cfg.allow_direct;
  jsRePublish rp;
  if (!cfg.republish_destination.empty()) {
    jsRePublish_Init(&rp);
    rp.Source = cfg.republish_source.empty() ? nullptr : cfg.republish_source.c_str();
    rp.Destination = cfg.republish_destination.c_str();
    rp.HeadersOnly = cfg.republish_headers_only;
    sc.RePublish = &rp;
  }
  jsOptions o = api_options(timeout_ms);

  // Create, else update: the server answers a create of an existing stream with the same
  // configuration with success, and with "name already in use" when it differs. A stream
  // deleted between the two steps sends us round again; a few rounds bound the race.
  constexpr int max_rounds = 4;
  status last;
  for (int round = 0; round < max_rounds; ++round) {
    jsStreamInfo* si = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s = js_AddStream(&si, impl_->ctx->js, &sc, &o, &jerr);
    if (si != nullptr) jsStreamInfo_Destroy(si);
    if (s == NATS_OK) return ok();
    if (jerr != JSStreamNameExistErr) return js_fail(s, jerr, "create stream " + cfg.name);

    si = nullptr;
    jerr = static_cast<jsErrCode>(0);
    s = js_UpdateStream(&si, impl_->ctx->js, &sc, &o, &jerr);
    if (si != nullptr) jsStreamInfo_Destroy(si);
    if (s == NATS_OK) return ok();
    last = js_fail(s, jerr, "update stream " + cfg.name);
    if (jerr == JSStreamNotFoundErr) continue;  // deleted meanwhile: create again
    if (s == NATS_ERR && jerr != 0) {
      last.code = errc::invalid;
      last.message = "stream " + cfg.name +
                     " exists with a configuration that cannot be changed to the requested one: " +
                     last.message;
    }
    return last;
  }
  return last;
}

result<stream_state> jetstream::stream_info(const std::string& stream, int64_t timeout_ms) {
  if (status s = check_timeout(timeout_ms); !s) return fail_as<stream_state>(s);
  if (status s = check_name(stream, "stream name"); !s) return fail_as<stream_state>(s);
  jsOptions o = api_options(timeout_ms);
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&si, impl_->ctx->js, stream.c_str(), &o, &jerr);
  if (s != NATS_OK) {
    if (si != nullptr) jsStreamInfo_Destroy(si);
    return fail_as<stream_state>(js_fail(s, jerr, "stream info of " + stream));
  }
  stream_state state;
  state.messages = si->State.Msgs;
  state.bytes = si->State.Bytes;
  state.first_seq = si->State.FirstSeq;
  state.last_seq = si->State.LastSeq;
  state.consumers = si->State.Consumers;
  jsStreamInfo_Destroy(si);
  return state;
}

status jetstream::delete_stream(const std::string& stream, int64_t timeout_ms) {
  if (status s = check_timeout(timeout_ms); !s) return s;
  if (status s = check_name(stream, "stream name"); !s) return s;
  jsOptions o = api_options(timeout_ms);
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_DeleteStream(impl_->ctx->js, stream.c_str(), &o, &jerr);
  return js_fail(s, jerr, "delete stream " + stream);
}

result<std::pair<uint64_t, std::vector<uint8_t>>> jetstream::next_message(
    const std::string& stream, uint64_t from_seq, const std::string& subject, int64_t timeout_ms) {
  using out = std::pair<uint64_t, std::vector<uint8_t>>;
  if (status s = check_timeout(timeout_ms); !s) return fail_as<out>(s);
  if (status s = check_name(stream, "stream name"); !s) return fail_as<out>(s);
  if (!valid_subject(subject, false, connection_access::max_subject_bytes(*impl_->ctx->conn)))
    return fail_as<out>(fail(errc::invalid, "invalid subject " + quoted(subject)));
  jsOptions o = api_options(timeout_ms);
  jsDirectGetMsgOptions dg;
  jsDirectGetMsgOptions_Init(&dg);
  dg.Sequence = std::max<uint64_t>(1, from_seq);
  dg.NextBySubject = subject.c_str();
  natsMsg* m = nullptr;
  natsStatus s = js_DirectGetMsg(&m, impl_->ctx->js, stream.c_str(), &o, &dg);
  out found;
  if (s == NATS_NOT_FOUND) {  // nothing at or after from_seq
    if (m != nullptr) natsMsg_Destroy(m);
    return found;
  }
  if (s != NATS_OK) {
    if (m != nullptr) natsMsg_Destroy(m);
    return fail_as<out>(js_fail(s, static_cast<jsErrCode>(0), "direct get from " + stream));
  }
  const char* seq = nullptr;
  if (natsMsgHeader_Get(m, "Nats-Sequence", &seq) == NATS_OK && seq != nullptr)
    found.first = std::strtoull(seq, nullptr, 10);
  const char* bytes = natsMsg_GetData(m);
  const int len = natsMsg_GetDataLength(m);
  if (bytes != nullptr && len > 0)
    found.second.assign(reinterpret_cast<const uint8_t*>(bytes),
                          reinterpret_cast<const uint8_t*>(bytes) + len);
  natsMsg_Destroy(m);
  if (found.first == 0) return fail_as<out>(fail(errc::io, "direct get: no sequence"));
  return found;
}

result<std::vector<std::string>> jetstream::stream_names(const std::string& subject_filter,
                                                         int64_t timeout_ms) {
  using out = std::vector<std::string>;
  if (status s = check_timeout(timeout_ms); !s) return fail_as<out>(s);
  if (!subject_filter.empty() &&
      !valid_subject(subject_filter, true, connection_access::max_subject_bytes(*impl_->ctx->conn)))
    return fail_as<out>(fail(errc::invalid, "invalid subject filter " + quoted(subject_filter)));
  jsOptions o = api_options(timeout_ms);
  if (!subject_filter.empty()) o.Stream.Info.SubjectsFilter = subject_filter.c_str();
  jsStreamNamesList* list = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_StreamNames(&list, impl_->ctx->js, &o, &jerr);
  out names;
  if (s == NATS_NOT_FOUND) return names;  // nats.c's answer for "no stream matches"
  if (s != NATS_OK) return fail_as<out>(js_fail(s, jerr, "list streams"));
  for (int k = 0; list != nullptr && k < list->Count; ++k)
    if (list->List[k] != nullptr) names.emplace_back(list->List[k]);
  if (list != nullptr) jsStreamNamesList_Destroy(list);
  return names;
}

result<publish_ack> jetstream::publish(const std::string& subject, const void* data, std::size_t n,
                                       const std::string& msg_id, int64_t timeout_ms) {
  if (status s = check_timeout(timeout_ms); !s) return fail_as<publish_ack>(s);
  connection& conn = *impl_->ctx->conn;
  if (!valid_subject(subject, false, connection_access::max_subject_bytes(conn)))
    return fail_as<publish_ack>(fail(errc::invalid, "invalid subject " + quoted(subject)));
  if (data == nullptr && n > 0)
    return fail_as<publish_ack>(fail(errc::invalid, "null data with a size"));
  // Header bytes count against max_payload too: leave the server to judge the sum, but refuse
  // what cannot fit at all before it reaches the wire.
  int64_t max = conn.max_payload();
  if (n > static_cast<std::size_t>(INT_MAX) ||
      (max > 0 && static_cast<uint64_t>(n) > static_cast<uint64_t>(max))) {
    return fail_as<publish_ack>(fail(errc::invalid, "payload of " + std::to_string(n) +
                                                             " bytes exceeds the server's "
                                                             "max_payload of " +
                                                             std::to_string(max) + " bytes"));
  }
  if (msg_id.size() > max_msg_id_bytes)
    return fail_as<publish_ack>(fail(
        errc::invalid, "msg_id longer than " + std::to_string(max_msg_id_bytes) + " bytes"));
  for (unsigned char c : msg_id) {
    // A header value: a control byte would end it (or inject another header).
    if (c < 0x20 || c == 0x7f)
      return fail_as<publish_ack>(fail(errc::invalid, "msg_id has a control byte"));
  }
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = timeout_ms;
  if (!msg_id.empty()) po.MsgId = msg_id.c_str();
  jsPubAck* pa = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s =
      js_Publish(&pa, impl_->ctx->js, subject.c_str(), data, static_cast<int>(n), &po, &jerr);
  if (s != NATS_OK) {
    if (pa != nullptr) jsPubAck_Destroy(pa);
    status st = js_fail(s, jerr, "JetStream publish on " + subject);
    if (st.code == errc::no_responders) st.message += " (no stream holds this subject)";
    return fail_as<publish_ack>(st);
  }
  publish_ack ack;
  if (pa->Stream != nullptr) ack.stream = pa->Stream;
  ack.sequence = pa->Sequence;
  ack.duplicate = pa->Duplicate;
  jsPubAck_Destroy(pa);
  return ack;
}

result<std::unique_ptr<pull_consumer>> jetstream::pull(const std::string& stream,
                                                       const std::string& durable,
                                                       const std::string& filter,
                                                       const consumer_options& opts,
                                                       int64_t timeout_ms) {
  using out = std::unique_ptr<pull_consumer>;
  if (status s = check_timeout(timeout_ms); !s) return fail_as<out>(s);
  if (status s = check_name(stream, "stream name"); !s) return fail_as<out>(s);
  if (status s = check_name(durable, "durable name"); !s) return fail_as<out>(s);
  if (status s = impl_->check_filter(filter); !s) return fail_as<out>(s);
  if (status s = check_duration(opts.ack_wait_ms, "ack_wait_ms", false); !s) return fail_as<out>(s);
  if (opts.max_deliver == 0 || opts.max_deliver < -1)
    return fail_as<out>(fail(errc::invalid, "max_deliver must be -1 or > 0"));
  if (opts.max_ack_pending == 0 || opts.max_ack_pending < -1)
    return fail_as<out>(fail(errc::invalid, "max_ack_pending must be -1 or > 0"));
  if (opts.deliver == consumer_options::start::by_sequence && opts.start_sequence == 0)
    return fail_as<out>(fail(errc::invalid, "start_sequence must be > 0 for by_sequence"));
  if (status s = check_duration(opts.existence_check_ms, "existence_check_ms", false); !s)
    return fail_as<out>(s);

  jsConsumerConfig cc;
  jsConsumerConfig_Init(&cc);
  cc.Durable = durable.c_str();
  cc.AckPolicy = js_AckExplicit;
  cc.AckWait = nanos(opts.ack_wait_ms);
  cc.MaxDeliver = opts.max_deliver;
  cc.MaxAckPending = opts.max_ack_pending;
  if (!filter.empty()) cc.FilterSubject = filter.c_str();
  jsOptions o = api_options(timeout_ms);

  // Create explicitly (never through js_PullSubscribe: see impl::bind), or update the durable's
  // settings when it exists. Where it starts is the existing durable's: the server refuses to
  // change it, and the header promises that `deliver` only applies to a new durable. Two
  // processes creating it at once with different starts send the loser round again.
  constexpr int max_rounds = 4;
  status last;
  bool created = false;
  for (int round = 0; round < max_rounds && !created; ++round) {
    jsConsumerInfo* existing = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s =
        js_GetConsumerInfo(&existing, impl_->ctx->js, stream.c_str(), durable.c_str(), &o, &jerr);
    if (s == NATS_OK && existing != nullptr && existing->Config != nullptr) {
      cc.DeliverPolicy = existing->Config->DeliverPolicy;
      cc.OptStartSeq = existing->Config->OptStartSeq;
      cc.OptStartTime = existing->Config->OptStartTime;
    } else if (s == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr) {
      switch (opts.deliver) {
        case consumer_options::start::all:
          cc.DeliverPolicy = js_DeliverAll;
          break;
        case consumer_options::start::new_only:
          cc.DeliverPolicy = js_DeliverNew;
          break;
        case consumer_options::start::by_sequence:
          cc.DeliverPolicy = js_DeliverByStartSequence;
          cc.OptStartSeq = opts.start_sequence;
          break;
      }
      cc.OptStartTime = 0;
      if (opts.deliver != consumer_options::start::by_sequence) cc.OptStartSeq = 0;
    } else {
      if (existing != nullptr) jsConsumerInfo_Destroy(existing);
      return fail_as<out>(js_fail(s, jerr, "consumer info of " + stream + "/" + durable));
    }
    if (existing != nullptr) jsConsumerInfo_Destroy(existing);

    jsConsumerInfo* ci = nullptr;
    jerr = static_cast<jsErrCode>(0);
    s = js_AddConsumer(&ci, impl_->ctx->js, stream.c_str(), &cc, &o, &jerr);
    if (ci != nullptr) jsConsumerInfo_Destroy(ci);
    if (s == NATS_OK) {
      created = true;
      break;
    }
    last = js_fail(s, jerr, "create or update consumer " + stream + "/" + durable);
    // Only a change of the start (created by someone else meanwhile) is worth another round.
    if (jerr != JSConsumerCreateErr && jerr != JSConsumerNameExistErr) return fail_as<out>(last);
  }
  if (!created) return fail_as<out>(last);
  return impl_->bind(stream, durable, filter, /*needs_ack=*/true, /*ephemeral=*/false,
                     opts.existence_check_ms, timeout_ms);
}

result<std::unique_ptr<pull_consumer>> jetstream::reader(const std::string& stream,
                                                         const std::string& filter,
                                                         int64_t timeout_ms,
                                                         int64_t inactive_threshold_ms) {
  using out = std::unique_ptr<pull_consumer>;
  if (status s = check_timeout(timeout_ms); !s) return fail_as<out>(s);
  if (status s = check_name(stream, "stream name"); !s) return fail_as<out>(s);
  if (status s = impl_->check_filter(filter); !s) return fail_as<out>(s);
  if (status s = check_duration(inactive_threshold_ms, "inactive_threshold_ms", false); !s)
    return fail_as<out>(s);

  // Created here with ack policy none and bound to: js_PullSubscribe refuses to create a pull
  // consumer with ack policy none itself.
  jsConsumerConfig cc;
  jsConsumerConfig_Init(&cc);
  cc.AckPolicy = js_AckNone;
  cc.DeliverPolicy = js_DeliverAll;
  cc.InactiveThreshold = nanos(inactive_threshold_ms);
  if (!filter.empty()) cc.FilterSubject = filter.c_str();
  jsOptions o = api_options(timeout_ms);
  jsConsumerInfo* ci = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_AddConsumer(&ci, impl_->ctx->js, stream.c_str(), &cc, &o, &jerr);
  if (s != NATS_OK || ci == nullptr || ci->Name == nullptr) {
    if (ci != nullptr) jsConsumerInfo_Destroy(ci);
    if (s == NATS_OK) return fail_as<out>(fail(errc::io, "create reader: no consumer name"));
    return fail_as<out>(js_fail(s, jerr, "create reader on " + stream));
  }
  std::string name = ci->Name;
  jsConsumerInfo_Destroy(ci);
  // Checked well within the threshold: a reader idle past it learns at its next fetch.
  const int64_t check_ms = std::max<int64_t>(1, std::min<int64_t>(5000, inactive_threshold_ms / 2));
  auto r = impl_->bind(stream, name, filter, /*needs_ack=*/false, /*ephemeral=*/true, check_ms,
                       timeout_ms);
  if (!r) {
    // Not bound: delete it now rather than leaving it to the inactive threshold.
    jerr = static_cast<jsErrCode>(0);
    (void)js_DeleteConsumer(impl_->ctx->js, stream.c_str(), name.c_str(), &o, &jerr);
  }
  return r;
}

}  // namespace corral::bus
