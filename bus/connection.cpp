#include "bus/connection.hpp"

#include "bus/connection_internal.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <condition_variable>
#include <mutex>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>

#include <nats/nats.h>

#include "bus/nkey.hpp"

namespace corral::bus {

namespace {

using clock = std::chrono::steady_clock;

// How long close() waits for nats.c to report the connection closed. Closing is local work (no
// network round trip), so this only bounds a nats.c misbehaviour.
constexpr std::chrono::milliseconds close_wait_limit{10000};

status ok() { return status{}; }

status fail(wire::ErrorCode e, std::string detail) { return failure(e, std::move(detail)); }

template <class T>
result<T> fail_as(const status& s) {
  return result<T>(s);
}

wire::ErrorCode classify(natsStatus s) {
  switch (s) {
    case NATS_OK:
      return wire::ErrorCode::ok;
    case NATS_TIMEOUT:
      return errc::timeout;
    case NATS_NO_RESPONDERS:
      return errc::no_responders;
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NO_SERVER:
    case NATS_STALE_CONNECTION:
    case NATS_NOT_YET_CONNECTED:
    case NATS_DRAINING:
    case NATS_INSUFFICIENT_BUFFER:  // the reconnect buffer is full
      return errc::not_connected;
    case NATS_INVALID_ARG:
    case NATS_INVALID_SUBJECT:
    case NATS_INVALID_QUEUE_NAME:
    case NATS_INVALID_SUBSCRIPTION:
    case NATS_MAX_PAYLOAD:
      return errc::invalid;
    default:
      return errc::io;
  }
}

// nats.c keeps a per-thread text of the last error, often more precise than the status name.
std::string describe(natsStatus s, const char* what) {
  std::string d = what;
  d += ": ";
  d += natsStatus_GetText(s);
  natsStatus last = NATS_OK;
  const char* text = nats_GetLastError(&last);
  if (last == s && text != nullptr && *text != '\0' && std::string(text) != natsStatus_GetText(s)) {
    d += " (";
    d += text;
    d += ")";
  }
  return d;
}

status from_nats(natsStatus s, const char* what) {
  if (s == NATS_OK) return ok();
  return fail(classify(s), describe(s, what));
}

message to_message(natsMsg* m) {
  message out;
  if (const char* subj = natsMsg_GetSubject(m)) out.subject = subj;
  if (const char* reply = natsMsg_GetReply(m)) out.reply = reply;
  const char* data = natsMsg_GetData(m);
  int len = natsMsg_GetDataLength(m);
  if (data != nullptr && len > 0) {
    const auto* bytes = reinterpret_cast<const uint8_t*>(data);
    out.data.assign(bytes, bytes + len);
  }
  return out;
}

bool bad_byte(unsigned char c) { return c <= 0x20 || c == 0x7f; }

// What the nonce signer needs: the seed, and whether it refused a signature (below).
struct nkey_signer {
  std::string seed;
  std::atomic<bool> refused_one{false};
};

// Signs the server's nonce with the connection's nkey seed (at the first connect and at every
// reconnect). nats.c 3.4 mangles a signature whose first byte is 0 (the server then refuses the
// connect: about one connect in 256, measured), and Ed25519 signatures are deterministic, so
// such a signature is refused here instead: that attempt fails, and the next one (a new
// connection, a new nonce) signs something else. connect() retries such a first connect;
// nats.c's reconnect loop retries by itself. nats.c frees the signature with free().
//
// A server that sends no nonce asks for no credentials: a client that has some refuses it (it
// is misconfigured, or not the deployment's server), with that said in the connect's error.
natsStatus sign_nonce_cb(char** custom_error, unsigned char** signature, int* length,
                         const char* nonce, void* closure) {
  auto* signer = static_cast<nkey_signer*>(closure);
  if (nonce == nullptr) {
    if (custom_error != nullptr)
      *custom_error = ::strdup("the NATS server asks for no credentials (no nonce to sign): "
                               "refusing it, since this client has an identity");
    return NATS_ERR;
  }
  std::vector<uint8_t> sig;
  if (!sign_with_seed(signer->seed, nonce, &sig)) return NATS_ERR;
  if (sig.front() == 0) {
    signer->refused_one = true;
    return NATS_ERR;
  }
  *signature = static_cast<unsigned char*>(std::malloc(sig.size()));
  if (*signature == nullptr) return NATS_NO_MEMORY;
  std::memcpy(*signature, sig.data(), sig.size());
  *length = static_cast<int>(sig.size());
  return NATS_OK;
}

// --- deferred destruction of nats.c subscriptions --------------------------------------------

// nats.c 3.4's read loop looks a subscription up, releases the table lock and only then locks the
// subscription, holding no reference to it (fixed upstream after 3.5.0). Dropping
// the last reference right after unsubscribing can free it under the reader's feet: a hang on a
// garbage mutex or a corrupted heap. So the last reference is dropped only once a PING/PONG round
// trip that started after the unsubscribe has completed: the reader handles the server's bytes in
// order, so when it has read that PONG it is done with every message it could have matched to
// the subscription. The round trip runs on this reaper's thread, so that destroying a
// subscription never waits for the network.
constexpr int64_t reaper_flush_timeout_ms = 2000;
constexpr std::chrono::milliseconds reaper_retry_interval{250};

class sub_reaper {
 public:
  explicit sub_reaper(natsConnection* nc) : nc_(nc) {}
  ~sub_reaper() { shutdown(); }
  sub_reaper(const sub_reaper&) = delete;
  sub_reaper& operator=(const sub_reaper&) = delete;

  void start() { thread_ = std::thread([this] { run(); }); }

  // Takes over the caller's reference to an unsubscribed subscription.
  void retire(natsSubscription* sub) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      subjects_.erase(sub);
      if (!closed_) {
        retired_.push_back(sub);
        cv_.notify_all();
        return;
      }
    }
    natsSubscription_Destroy(sub);  // the connection is closed: no reader any more
  }

  // Call after natsConnection_Close (the reader has stopped): destroys what is left.
  void shutdown() {
    std::vector<natsSubscription*> left;
    {
      std::lock_guard<std::mutex> lock(mu_);
      closed_ = true;
      cv_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
    {
      std::lock_guard<std::mutex> lock(mu_);
      left.swap(retired_);
      subjects_.clear();
    }
    for (natsSubscription* sub : left) natsSubscription_Destroy(sub);
  }

  // Subjects by subscription, for error reports: nats.c 3.4 may hand its asynchronous error
  // callback a subscription that is already freed, so it is looked up, never dereferenced.
  void name(const natsSubscription* sub, std::string subject) {
    std::lock_guard<std::mutex> lock(mu_);
    subjects_[sub] = std::move(subject);
  }
  std::string subject_of(const natsSubscription* sub) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = subjects_.find(sub);
    return it == subjects_.end() ? std::string() : it->second;
  }

 private:
  void run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [this] { return closed_ || !retired_.empty(); });
      if (closed_) break;
      std::vector<natsSubscription*> batch;
      batch.swap(retired_);
      lock.unlock();
      natsStatus s = natsConnection_FlushTimeout(nc_, reaper_flush_timeout_ms);
      if (s == NATS_OK) {
        for (natsSubscription* sub : batch) natsSubscription_Destroy(sub);
        lock.lock();
        continue;
      }
      // Disconnected or slow: keep them and try again. Closed: shutdown() takes them.
      lock.lock();
      retired_.insert(retired_.end(), batch.begin(), batch.end());
      if (s == NATS_CONNECTION_CLOSED)
        cv_.wait(lock, [this] { return closed_; });
      else
        cv_.wait_for(lock, reaper_retry_interval, [this] { return closed_; });
    }
    lock.unlock();
    nats_ReleaseThreadMemory();
  }

  natsConnection* const nc_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<natsSubscription*> retired_;
  std::unordered_map<const natsSubscription*, std::string> subjects_;
  bool closed_ = false;
  std::thread thread_;
};

// --- connection events ------------------------------------------------------------------------

// What nats.c's event thread calls into. Shared with nats.c through a heap-allocated
// shared_ptr (the closure), freed once nats.c has reported the connection closed, which is the
// last event it delivers for a connection.
struct event_hub {
  std::function<void()> on_disconnected;
  std::function<void()> on_reconnected;
  std::function<void()> on_closed;
  std::function<void(const std::string&)> on_async_error;
  std::shared_ptr<sub_reaper> reaper;

  std::mutex mu;
  std::condition_variable cv;
  bool closed = false;  // on_closed has returned
  // Set when close() had to return without waiting (called from an event callback): later
  // events must not reach user code that may be gone by then.
  std::atomic<bool> muted{false};
};

// The hub whose event callback the current thread is running, if any.
thread_local const event_hub* current_event_hub = nullptr;

struct event_scope {
  const event_hub* previous;
  explicit event_scope(const event_hub* h) : previous(current_event_hub) {
    current_event_hub = h;
  }
  ~event_scope() { current_event_hub = previous; }
  event_scope(const event_scope&) = delete;
  event_scope& operator=(const event_scope&) = delete;
};

event_hub& hub_of(void* closure) { return **static_cast<std::shared_ptr<event_hub>*>(closure); }

void on_disconnected_cb(natsConnection*, void* closure) {
  event_hub& hub = hub_of(closure);
  event_scope scope(&hub);
  if (hub.on_disconnected && !hub.muted.load()) hub.on_disconnected();
}

void on_reconnected_cb(natsConnection*, void* closure) {
  event_hub& hub = hub_of(closure);
  event_scope scope(&hub);
  if (hub.on_reconnected && !hub.muted.load()) hub.on_reconnected();
}

void on_closed_cb(natsConnection*, void* closure) {
  event_hub& hub = hub_of(closure);
  {
    event_scope scope(&hub);
    if (hub.on_closed && !hub.muted.load()) hub.on_closed();
  }
  std::lock_guard<std::mutex> lock(hub.mu);
  hub.closed = true;
  hub.cv.notify_all();  // under the lock: the waiter may free the hub as soon as it wakes
}

void on_async_error_cb(natsConnection* nc, natsSubscription* sub, natsStatus err, void* closure) {
  event_hub& hub = hub_of(closure);
  event_scope scope(&hub);
  if (!hub.on_async_error || hub.muted.load()) return;
  std::string detail = natsStatus_GetText(err);
  if (err == NATS_SLOW_CONSUMER) detail = "slow consumer: messages dropped";
  if (err == NATS_NOT_PERMITTED) {
    // The server's own words name what was refused ("Permissions Violation for Publish to ...").
    const char* text = nullptr;
    if (natsConnection_GetLastError(nc, &text) == err && text != nullptr && *text != '\0') {
      detail += ": ";
      detail += text;
    }
  }
  if (sub != nullptr && hub.reaper) {
    if (std::string subject = hub.reaper->subject_of(sub); !subject.empty()) {
      detail += " on ";
      detail += subject;
    }
  }
  hub.on_async_error(detail);
}

// --- subscription gate ------------------------------------------------------------------------

// Stands between nats.c's delivery thread and the user's handler: once closed, the handler is
// never entered again, and closing waits for a call in progress. Shared with nats.c through a
// heap-allocated shared_ptr freed by the subscription's on-complete callback, which nats.c calls
// once the subscription is closed and its last delivery has returned.
// The connection whose handler the current thread is running, if any.
thread_local const void* current_delivery_owner = nullptr;

struct sub_gate {
  const void* owner = nullptr;  // the connection::impl that made the subscription
  std::mutex mu;
  std::condition_variable cv;
  message_handler handler;
  bool closing = false;
  bool running = false;
  std::thread::id runner;
  bool destroy_after_call = false;  // closed from inside the handler

  void deliver(message&& msg) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (closing) return;
      running = true;
      runner = std::this_thread::get_id();
    }
    const void* previous = current_delivery_owner;
    current_delivery_owner = owner;
    handler(std::move(msg));  // not touched by anyone else while running
    current_delivery_owner = previous;
    message_handler dead;
    {
      std::lock_guard<std::mutex> lock(mu);
      running = false;
      if (destroy_after_call) {
        dead = std::move(handler);
        handler = nullptr;
      }
      cv.notify_all();
    }
  }

  void close_and_wait() {
    message_handler dead;
    std::unique_lock<std::mutex> lock(mu);
    closing = true;
    if (running && runner == std::this_thread::get_id()) {
      destroy_after_call = true;  // we are that call: it cannot be waited for
      return;
    }
    cv.wait(lock, [this] { return !running; });
    dead = std::move(handler);
    handler = nullptr;
    lock.unlock();
    // `dead` (the handler and its captures) is destroyed here, on the caller's thread.
  }
};

void on_message_cb(natsConnection*, natsSubscription*, natsMsg* m, void* closure) {
  message msg = to_message(m);
  natsMsg_Destroy(m);
  (*static_cast<std::shared_ptr<sub_gate>*>(closure))->deliver(std::move(msg));
}

void on_sub_complete_cb(void* closure) { delete static_cast<std::shared_ptr<sub_gate>*>(closure); }

// nats.c's delivery pool is process-wide and only grows; remember what was asked for already.
std::mutex pool_size_mu;
int pool_size_requested = 0;

status grow_delivery_pool(int threads) {
  std::lock_guard<std::mutex> lock(pool_size_mu);
  if (threads <= pool_size_requested) return ok();
  status s = from_nats(nats_SetMessageDeliveryPoolSize(threads), "set delivery pool size");
  if (s) pool_size_requested = threads;
  return s;
}

std::string validate(const options& o) {
  if (o.urls.empty()) return "options.urls is empty";
  for (const auto& u : o.urls) {
    if (u.empty()) return "options.urls has an empty url";
    for (unsigned char c : u) {
      if (bad_byte(c) || c == ',') return "options.urls has an invalid url: " + u;
    }
  }
  if (o.connect_timeout_ms <= 0) return "options.connect_timeout_ms must be > 0";
  if (o.max_reconnect < -1) return "options.max_reconnect must be >= -1";
  if (o.reconnect_wait_ms < 0) return "options.reconnect_wait_ms must be >= 0";
  if (o.reconnect_jitter_ms < 0) return "options.reconnect_jitter_ms must be >= 0";
  if (o.reconnect_buffer_bytes <= 0 || o.reconnect_buffer_bytes > INT_MAX)
    return "options.reconnect_buffer_bytes must be in 1.." + std::to_string(INT_MAX);
  if (o.ping_interval_ms <= 0) return "options.ping_interval_ms must be > 0";
  if (o.max_pings_out <= 0) return "options.max_pings_out must be > 0";
  if (o.subscription_pending_msgs == 0 || o.subscription_pending_msgs < -1)
    return "options.subscription_pending_msgs must be -1 or > 0";
  if (o.subscription_pending_bytes == 0 || o.subscription_pending_bytes < -1 ||
      o.subscription_pending_bytes > INT_MAX)
    return "options.subscription_pending_bytes must be -1 or in 1.." + std::to_string(INT_MAX);
  if (o.delivery_pool_threads < 0 || o.delivery_pool_threads > 1024)
    return "options.delivery_pool_threads must be in 0..1024";
  // Room for subject + reply + size in the server's 4 KiB control line.
  if (o.max_subject_bytes <= 0 || o.max_subject_bytes > 1800)
    return "options.max_subject_bytes must be in 1..1800";
  if (!o.inbox_prefix.empty() &&
      (!valid_subject(o.inbox_prefix, false, static_cast<std::size_t>(o.max_subject_bytes) / 2)))
    return "options.inbox_prefix is not a valid subject without wildcards";
  if (o.tls_cert_file.empty() != o.tls_key_file.empty())
    return "options.tls_cert_file and options.tls_key_file go together";
  if (o.name.size() > 256) return "options.name is longer than 256 bytes";
  for (unsigned char c : o.name) {
    if (c < 0x20 || c == 0x7f) return "options.name has a control byte";
  }
  return {};
}

}  // namespace

bool valid_subject(const std::string& subject, bool allow_wildcards,
                   std::size_t max_bytes) noexcept {
  if (subject.empty() || subject.size() > max_bytes) return false;
  std::size_t start = 0;
  while (true) {
    std::size_t dot = subject.find('.', start);
    std::size_t end = dot == std::string::npos ? subject.size() : dot;
    if (end == start) return false;  // empty token: leading, trailing or double dot
    bool last = dot == std::string::npos;
    for (std::size_t i = start; i < end; ++i) {
      auto c = static_cast<unsigned char>(subject[i]);
      if (bad_byte(c)) return false;
      if (c == '*' || c == '>') {
        // A wildcard is a whole token; '>' only as the last one.
        if (!allow_wildcards || end - start != 1) return false;
        if (c == '>' && !last) return false;
      }
    }
    if (last) return true;
    start = dot + 1;
  }
}

bool valid_queue_group(const std::string& group, std::size_t max_bytes) noexcept {
  if (group.empty() || group.size() > max_bytes) return false;
  for (unsigned char c : group) {
    if (bad_byte(c) || c == '*' || c == '>') return false;
  }
  return true;
}

// --- subscription -----------------------------------------------------------------------------

struct subscription::impl {
  natsSubscription* sub = nullptr;
  std::shared_ptr<sub_reaper> reaper;  // takes `sub` over on destruction
  std::shared_ptr<sub_gate> gate;
  std::string subject;
  std::string queue_group;
  std::atomic<bool> unsubscribed{false};
};

subscription::subscription(std::unique_ptr<impl> i) : impl_(std::move(i)) {}

subscription::~subscription() {
  unsubscribe();
  impl_->reaper->retire(impl_->sub);
}

void subscription::unsubscribe() {
  if (!impl_->unsubscribed.exchange(true)) {
    // Fails only if the subscription or its connection is closed already: nothing to remove.
    (void)natsSubscription_Unsubscribe(impl_->sub);
  }
  impl_->gate->close_and_wait();
}

const std::string& subscription::subject() const noexcept { return impl_->subject; }

const std::string& subscription::queue_group() const noexcept { return impl_->queue_group; }

int64_t subscription::dropped() const noexcept {
  int64_t n = 0;
  if (natsSubscription_GetDropped(impl_->sub, &n) != NATS_OK) return 0;
  return n;
}

// --- connection -------------------------------------------------------------------------------

struct connection::impl {
  natsConnection* nc = nullptr;
  options opts;
  std::shared_ptr<event_hub> hub;
  std::shared_ptr<sub_reaper> reaper;
  // The closure nats.c holds for the event callbacks; freed once on_closed has run.
  std::shared_ptr<event_hub>* hub_closure = nullptr;
  std::string inbox_prefix;  // "_INBOX" unless options::inbox_prefix
  std::size_t max_subject = 1024;
  // The nkey seed the signature callback signs with (options::nkey_seed_file); outlives nc.
  std::unique_ptr<nkey_signer> signer;

  status check_subject(const std::string& s, bool wildcards, const char* what) const {
    if (valid_subject(s, wildcards, max_subject)) return ok();
    std::string d = std::string("invalid ") + what + " \"";
    d.append(s, 0, std::min<std::size_t>(s.size(), 128));
    d += s.size() > 128 ? "...\"" : "\"";
    return fail(errc::invalid, std::move(d));
  }

  status check_payload(std::size_t n) const {
    int64_t max = natsConnection_GetMaxPayload(nc);
    if (n > static_cast<std::size_t>(INT_MAX) ||
        (max > 0 && static_cast<uint64_t>(n) > static_cast<uint64_t>(max))) {
      return fail(errc::invalid, "payload of " + std::to_string(n) +
                                          " bytes exceeds the server's max_payload of " +
                                          std::to_string(max) + " bytes");
    }
    return ok();
  }
};

connection::connection(std::unique_ptr<impl> i) : impl_(std::move(i)) {}

std::unique_ptr<connection> connection::connect(const options& opts, std::string* error) {
  auto set_error = [error](std::string e) {
    if (error != nullptr) *error = std::move(e);
  };
  if (std::string why = validate(opts); !why.empty()) {
    set_error(std::move(why));
    return nullptr;
  }

  natsOptions* no = nullptr;
  if (natsStatus s = natsOptions_Create(&no); s != NATS_OK) {
    set_error(describe(s, "create options"));
    return nullptr;
  }
  if (opts.delivery_pool_threads > 0) {
    if (status s = grow_delivery_pool(opts.delivery_pool_threads); !s) {
      natsOptions_Destroy(no);
      set_error(s.message);
      return nullptr;
    }
  }

  auto i = std::make_unique<impl>();
  i->opts = opts;
  i->max_subject = static_cast<std::size_t>(opts.max_subject_bytes);
  i->inbox_prefix = opts.inbox_prefix.empty() ? std::string("_INBOX") : opts.inbox_prefix;
  i->hub = std::make_shared<event_hub>();
  i->hub->on_disconnected = opts.on_disconnected;
  i->hub->on_reconnected = opts.on_reconnected;
  i->hub->on_closed = opts.on_closed;
  i->hub->on_async_error = opts.on_async_error;
  i->hub_closure = new std::shared_ptr<event_hub>(i->hub);
  void* closure = i->hub_closure;

  std::vector<const char*> urls;
  urls.reserve(opts.urls.size());
  for (const auto& u : opts.urls) urls.push_back(u.c_str());

  natsStatus s = natsOptions_SetServers(no, urls.data(), static_cast<int>(urls.size()));
  if (s == NATS_OK && !opts.name.empty()) s = natsOptions_SetName(no, opts.name.c_str());
  if (s == NATS_OK) s = natsOptions_SetTimeout(no, opts.connect_timeout_ms);
  if (s == NATS_OK) s = natsOptions_SetAllowReconnect(no, true);
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(no, opts.max_reconnect);
  if (s == NATS_OK) s = natsOptions_SetReconnectWait(no, opts.reconnect_wait_ms);
  if (s == NATS_OK)
    s = natsOptions_SetReconnectJitter(no, opts.reconnect_jitter_ms, opts.reconnect_jitter_ms);
  if (s == NATS_OK)
    s = natsOptions_SetReconnectBufSize(no, static_cast<int>(opts.reconnect_buffer_bytes));
  if (s == NATS_OK) s = natsOptions_SetPingInterval(no, opts.ping_interval_ms);
  if (s == NATS_OK) s = natsOptions_SetMaxPingsOut(no, opts.max_pings_out);
  if (s == NATS_OK) s = natsOptions_SetFailRequestsOnDisconnect(no, opts.fail_requests_on_disconnect);
  if (s == NATS_OK) s = natsOptions_SetSendAsap(no, opts.send_asap);
  if (s == NATS_OK) s = natsOptions_UseGlobalMessageDelivery(no, opts.delivery_pool_threads > 0);
  if (s == NATS_OK && !opts.inbox_prefix.empty())
    s = natsOptions_SetCustomInboxPrefix(no, opts.inbox_prefix.c_str());
  if (s == NATS_OK && !opts.nkey_seed_file.empty()) {
    std::string why;
    auto key = read_user_nkey_file(opts.nkey_seed_file, &why);
    if (!key) {
      set_error("NATS credentials: " + why);
      natsOptions_Destroy(no);
      delete i->hub_closure;
      return nullptr;
    }
    i->signer = std::make_unique<nkey_signer>();
    i->signer->seed = key->seed;
    s = natsOptions_SetNKey(no, key->public_key.c_str(), sign_nonce_cb, i->signer.get());
  }
  bool secure = !opts.tls_ca_file.empty() || !opts.tls_cert_file.empty();
  for (const auto& u : opts.urls) secure = secure || u.rfind("tls://", 0) == 0;
  if (s == NATS_OK && secure) s = natsOptions_SetSecure(no, true);
  if (s == NATS_OK && !opts.tls_ca_file.empty())
    s = natsOptions_LoadCATrustedCertificates(no, opts.tls_ca_file.c_str());
  if (s == NATS_OK && !opts.tls_cert_file.empty())
    s = natsOptions_LoadCertificatesChain(no, opts.tls_cert_file.c_str(), opts.tls_key_file.c_str());
  if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(no, on_disconnected_cb, closure);
  if (s == NATS_OK) s = natsOptions_SetReconnectedCB(no, on_reconnected_cb, closure);
  if (s == NATS_OK) s = natsOptions_SetClosedCB(no, on_closed_cb, closure);
  if (s == NATS_OK) s = natsOptions_SetErrorHandler(no, on_async_error_cb, closure);
  if (s != NATS_OK) {
    set_error(describe(s, "set options"));
    natsOptions_Destroy(no);
    delete i->hub_closure;
    return nullptr;
  }

  s = natsConnection_Connect(&i->nc, no);
  // A signature the signer refused (see sign_nonce_cb) failed that attempt only: try again, a
  // new connection with a new nonce (eight refusals in a row: one chance in 2^64).
  for (int attempt = 1; s != NATS_OK && i->signer && i->signer->refused_one.exchange(false) &&
                        attempt < 8;
       ++attempt) {
    s = natsConnection_Connect(&i->nc, no);
  }
  natsOptions_Destroy(no);  // the connection keeps its own copy
  if (s != NATS_OK) {
    // A connection that never came up delivers no events: the closure is ours to free.
    set_error(describe(s, "connect"));
    delete i->hub_closure;
    return nullptr;
  }
  i->reaper = std::make_shared<sub_reaper>(i->nc);
  i->hub->reaper = i->reaper;
  try {
    i->reaper->start();
  } catch (const std::system_error& e) {
    set_error(std::string("start the subscription reaper: ") + e.what());
    natsConnection_Close(i->nc);
    std::unique_lock<std::mutex> lock(i->hub->mu);
    bool closed = i->hub->cv.wait_for(lock, close_wait_limit, [&] { return i->hub->closed; });
    lock.unlock();
    natsConnection_Destroy(i->nc);
    if (closed) delete i->hub_closure;
    return nullptr;
  }
  return std::unique_ptr<connection>(new connection(std::move(i)));
}

connection::~connection() {
  close();
  impl_->reaper->shutdown();
  natsConnection_Destroy(impl_->nc);
  bool closed;
  {
    std::lock_guard<std::mutex> lock(impl_->hub->mu);
    closed = impl_->hub->closed;
  }
  // If on_closed has not run yet (close() called from an event callback, or nats.c late),
  // nats.c will still call it: the closure must outlive us and is left to it.
  if (closed) delete impl_->hub_closure;
}

void connection::close() {
  natsConnection_Close(impl_->nc);
  event_hub& hub = *impl_->hub;
  if (current_event_hub == &hub) {
    hub.muted = true;  // on_closed runs after this callback; the owner may be gone by then
    return;
  }
  std::unique_lock<std::mutex> lock(hub.mu);
  hub.cv.wait_for(lock, close_wait_limit, [&hub] { return hub.closed; });
}

status connection::drain(int64_t timeout_ms) {
  if (timeout_ms <= 0) return fail(errc::invalid, "drain timeout must be > 0");
  event_hub& hub = *impl_->hub;
  if (current_event_hub == &hub)
    return fail(errc::invalid, "drain called from the connection's own event callback");
  // Draining waits for the handlers to finish: the calling one never would.
  if (current_delivery_owner == impl_.get())
    return fail(errc::invalid, "drain called from a handler of the connection");
  natsStatus s = natsConnection_DrainTimeout(impl_->nc, timeout_ms);
  if (s != NATS_OK && s != NATS_DRAINING) {
    status st = from_nats(s, "drain");
    close();
    return st;
  }
  bool closed;
  {
    std::unique_lock<std::mutex> lock(hub.mu);
    // nats.c closes the connection itself when its drain timeout expires; allow it that long
    // plus the time to close.
    closed = hub.cv.wait_for(lock, std::chrono::milliseconds(timeout_ms) + close_wait_limit,
                             [&hub] { return hub.closed; });
  }
  if (!closed) {
    close();
    return fail(errc::timeout, "drain did not finish in " + std::to_string(timeout_ms) + " ms");
  }
  return ok();
}

status connection::publish(const std::string& subject, const void* data, std::size_t n) {
  if (status s = impl_->check_subject(subject, false, "subject"); !s) return s;
  if (status s = impl_->check_payload(n); !s) return s;
  if (data == nullptr && n > 0) return fail(errc::invalid, "null data with a size");
  return from_nats(natsConnection_Publish(impl_->nc, subject.c_str(), data, static_cast<int>(n)),
                   "publish");
}

status connection::publish(const std::string& subject, const std::string& reply,
                           const void* data, std::size_t n) {
  if (reply.empty()) return publish(subject, data, n);
  if (status s = impl_->check_subject(subject, false, "subject"); !s) return s;
  if (status s = impl_->check_subject(reply, false, "reply subject"); !s) return s;
  if (status s = impl_->check_payload(n); !s) return s;
  if (data == nullptr && n > 0) return fail(errc::invalid, "null data with a size");
  return from_nats(natsConnection_PublishRequest(impl_->nc, subject.c_str(), reply.c_str(), data,
                                                 static_cast<int>(n)),
                   "publish");
}

status connection::respond(const message& req, const void* data, std::size_t n) {
  if (req.reply.empty()) return ok();
  return publish(req.reply, data, n);
}

result<message> connection::request(const std::string& subject, const void* data, std::size_t n,
                                    int64_t timeout_ms) {
  if (timeout_ms <= 0) return fail_as<message>(fail(errc::invalid, "timeout must be > 0"));
  if (status s = impl_->check_subject(subject, false, "subject"); !s) return fail_as<message>(s);
  if (status s = impl_->check_payload(n); !s) return fail_as<message>(s);
  if (data == nullptr && n > 0)
    return fail_as<message>(fail(errc::invalid, "null data with a size"));
  natsMsg* reply = nullptr;
  natsStatus s = natsConnection_Request(&reply, impl_->nc, subject.c_str(), data,
                                        static_cast<int>(n), timeout_ms);
  if (s != NATS_OK) {
    if (reply != nullptr) natsMsg_Destroy(reply);
    return fail_as<message>(from_nats(s, ("request on " + subject).c_str()));
  }
  message out = to_message(reply);
  natsMsg_Destroy(reply);
  return out;
}

result<std::vector<message>> connection::request_many(const std::string& subject,
                                                      const void* data, std::size_t n,
                                                      int64_t gather_timeout_ms,
                                                      std::size_t max_replies) {
  using out = std::vector<message>;
  if (gather_timeout_ms <= 0)
    return fail_as<out>(fail(errc::invalid, "gather timeout must be > 0"));
  if (max_replies == 0) return fail_as<out>(fail(errc::invalid, "max_replies must be >= 1"));
  if (status s = impl_->check_subject(subject, false, "subject"); !s) return fail_as<out>(s);
  if (status s = impl_->check_payload(n); !s) return fail_as<out>(s);
  if (data == nullptr && n > 0)
    return fail_as<out>(fail(errc::invalid, "null data with a size"));

  // A synchronous subscription: replies are read on this thread, so this works from inside a
  // handler without a free delivery thread.
  std::string inbox = new_inbox();
  natsSubscription* sub = nullptr;
  natsStatus s = natsConnection_SubscribeSync(&sub, impl_->nc, inbox.c_str());
  if (s != NATS_OK) return fail_as<out>(from_nats(s, "subscribe to the reply inbox"));
  const options& o = impl_->opts;
  (void)natsSubscription_SetPendingLimits(sub, o.subscription_pending_msgs,
                                          static_cast<int>(o.subscription_pending_bytes));

  out replies;
  status st;
  s = natsConnection_PublishRequest(impl_->nc, subject.c_str(), inbox.c_str(), data,
                                    static_cast<int>(n));
  if (s != NATS_OK) st = from_nats(s, ("request_many on " + subject).c_str());
  const auto deadline = clock::now() + std::chrono::milliseconds(gather_timeout_ms);
  while (st.ok() && replies.size() < max_replies) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
    if (left.count() <= 0) break;
    natsMsg* m = nullptr;
    s = natsSubscription_NextMsg(&m, sub, left.count());
    if (s == NATS_OK) {
      replies.push_back(to_message(m));
      natsMsg_Destroy(m);
      continue;
    }
    if (s == NATS_TIMEOUT) break;
    if (s == NATS_NO_RESPONDERS && !replies.empty()) break;  // cannot happen after a reply
    st = from_nats(s, ("request_many on " + subject).c_str());
  }
  (void)natsSubscription_Unsubscribe(sub);
  impl_->reaper->retire(sub);
  if (!st) return fail_as<out>(st);
  return replies;
}

result<std::unique_ptr<subscription>> connection::subscribe(const std::string& subject,
                                                            const std::string& queue_group,
                                                            message_handler handler) {
  using out = std::unique_ptr<subscription>;
  if (!handler) return fail_as<out>(fail(errc::invalid, "empty handler"));
  if (status s = impl_->check_subject(subject, true, "subject"); !s) return fail_as<out>(s);
  if (!queue_group.empty() && !valid_queue_group(queue_group, impl_->max_subject))
    return fail_as<out>(fail(errc::invalid, "invalid queue group"));

  auto gate = std::make_shared<sub_gate>();
  gate->owner = impl_.get();
  gate->handler = std::move(handler);
  auto* closure = new std::shared_ptr<sub_gate>(gate);

  natsSubscription* sub = nullptr;
  natsStatus s = queue_group.empty()
                     ? natsConnection_Subscribe(&sub, impl_->nc, subject.c_str(), on_message_cb,
                                                closure)
                     : natsConnection_QueueSubscribe(&sub, impl_->nc, subject.c_str(),
                                                     queue_group.c_str(), on_message_cb, closure);
  if (s != NATS_OK) {
    delete closure;  // no subscription: nats.c never saw the closure
    return fail_as<out>(from_nats(s, ("subscribe to " + subject).c_str()));
  }
  s = natsSubscription_SetOnCompleteCB(sub, on_sub_complete_cb, closure);
  if (s != NATS_OK) {
    // Closed already (the connection closed under us). nats.c may still hold the closure with
    // no completion to free it: leave it (a few bytes, on this rare path) and make the gate
    // refuse any delivery.
    gate->close_and_wait();
    (void)natsSubscription_Unsubscribe(sub);
    impl_->reaper->retire(sub);
    return fail_as<out>(from_nats(s, ("subscribe to " + subject).c_str()));
  }
  const options& o = impl_->opts;
  s = natsSubscription_SetPendingLimits(sub, o.subscription_pending_msgs,
                                        static_cast<int>(o.subscription_pending_bytes));
  auto i = std::make_unique<subscription::impl>();
  impl_->reaper->name(sub, subject);
  i->sub = sub;
  i->reaper = impl_->reaper;
  i->gate = std::move(gate);
  i->subject = subject;
  i->queue_group = queue_group;
  std::unique_ptr<subscription> owned(new subscription(std::move(i)));
  if (s != NATS_OK) return fail_as<out>(from_nats(s, "set pending limits"));  // owned unsubscribes
  return owned;
}

std::string connection::new_inbox() const {
  natsInbox* inbox = nullptr;
  std::string out;
  if (natsInbox_Create(&inbox) == NATS_OK && inbox != nullptr) {
    // "_INBOX.<unique token>": keep the token, put our prefix in front.
    std::string s(inbox);
    natsInbox_Destroy(inbox);
    std::size_t dot = s.find('.');
    out = impl_->inbox_prefix + "." + (dot == std::string::npos ? s : s.substr(dot + 1));
  }
  return out;
}

status connection::flush(int64_t timeout_ms) {
  if (timeout_ms <= 0) return fail(errc::invalid, "flush timeout must be > 0");
  return from_nats(natsConnection_FlushTimeout(impl_->nc, timeout_ms), "flush");
}

bool connection::is_connected() const {
  return natsConnection_Status(impl_->nc) == NATS_CONN_STATUS_CONNECTED;
}

int64_t connection::max_payload() const {
  if (natsConnection_IsClosed(impl_->nc)) return 0;
  return natsConnection_GetMaxPayload(impl_->nc);
}

// --- internal access (bus/connection_internal.hpp) -------------------------------------------

namespace internal {

natsConnection* connection_access::native(connection& c) { return c.impl_->nc; }

void connection_access::retire(connection& c, natsSubscription* sub) {
  c.impl_->reaper->retire(sub);
}

std::size_t connection_access::max_subject_bytes(const connection& c) {
  return c.impl_->max_subject;
}

wire::ErrorCode classify_status(natsStatus s) { return classify(s); }

std::string describe_status(natsStatus s, const char* what) { return describe(s, what); }

}  // namespace internal

}  // namespace corral::bus
