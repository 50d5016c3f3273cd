// _corral_guest: the native part of the guest runner (guest_runner.py), a CPython extension
// module embedded in the runner and loaded once per lease. docs/jobs.md ("Isolation levels",
// "completed") says what it guarantees; in short:
//
//  - namespaces: the template enters a user namespace of its own once (identity-mapped by the
//    manager), then gives every job process fresh PID, IPC, UTS and network namespaces: the job
//    process is PID 1 of its own namespace, and when it ends every process of the job goes.
//  - the completion token: the job process reads a per-job random token (16 bytes, from the
//    manager, ahead of its spec on stdin) into memory that no Python object refers to. run()
//    writes it to the job's completion pipe only after the program's code object returned
//    normally and its streams were flushed, and then ends the process with status 0. The
//    program never sees the token: it cannot write it, whatever it prints, writes or exits with.
//  - an audit hook (C, cannot be removed) that denies the program the ways to read its own
//    memory or to make its code object return early: ctypes and other native modules outside
//    the standard library, trace and profile functions, code objects built by hand (code
//    constructor, marshal data other than the standard library's own .pyc files), gc
//    introspection, SQLite extension loading.
//
// Every entry point is single-use and tied to a role (template, then job): a program that
// reaches these functions (they are ordinary Python objects) can call nothing that helps it.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern char** environ;

namespace {

enum class role { fresh, template_process, job_process };

constexpr std::size_t token_bytes = 16;

role g_role = role::fresh;
bool g_armed = false;       // the token is here and neither run() nor exec_javascript() used it
bool g_sealed = false;      // the audit hook is installed
bool g_fork_copy = false;   // this process is a fork of the job process, not the job process
unsigned char g_token[token_bytes];

// The audit hook's configuration (set once by seal()).
char g_dynload_dir[512];     // native modules load from here only
char g_pyc_prefix[512];      // .pyc files under this prefix are the standard library's
char g_pending_pyc[4096];    // the trusted .pyc opened last, until its data is unmarshalled
bool g_pending = false;

void on_fork_child() { g_fork_copy = true; }

PyObject* refuse(const char* what) {
  PyErr_Format(PyExc_PermissionError, "corral: %s is not available here", what);
  return nullptr;
}

bool write_all(int fd, const void* data, std::size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

bool read_all(int fd, void* data, std::size_t n) {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    const ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

bool starts_with(const char* s, const char* prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

bool ends_with(const char* s, const char* suffix) {
  const std::size_t ls = strlen(s), lx = strlen(suffix);
  return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

// An absolute path without "." or ".." components or empty ones: what it names is what it says.
bool plain_absolute(const char* p) {
  if (p[0] != '/') return false;
  return strstr(p, "/./") == nullptr && strstr(p, "/../") == nullptr && strstr(p, "//") == nullptr &&
         !ends_with(p, "/.") && !ends_with(p, "/..");
}

// Modules that give a program raw memory access or native calls, and test modules of CPython
// that can corrupt memory: denied by name wherever they would come from.
bool denied_module(const char* name, std::size_t n) {
  static const char* const names[] = {
      "ctypes", "_ctypes", "_ctypes_test", "cffi", "_cffi_backend", "_testcapi",
      "_testinternalcapi", "_testbuffer", "_testmultiphase", "_testimportmultiple",
      "_testclinic", "_testsinglephase", "_xxsubinterpreters", "_xxinterpchannels",
      "_xxtestfuzz", "xxlimited", "xxlimited_35", "xxsubtype", "_corral_guest"};
  for (const char* d : names)
    if (strlen(d) == n && strncmp(d, name, n) == 0) return true;
  return false;
}

// A module name: its first component and its last (a package can name a submodule after a
// denied module: "pkg._ctypes" would load PyInit__ctypes).
bool denied_module_name(const char* name) {
  const char* dot = strchr(name, '.');
  if (denied_module(name, dot ? static_cast<std::size_t>(dot - name) : strlen(name))) return true;
  const char* last = strrchr(name, '.');
  return last != nullptr && denied_module(last + 1, strlen(last + 1));
}

// The file name of a native module, up to its first dot ("_ctypes.cpython-311-....so").
bool denied_module_file(const char* path) {
  const char* base = strrchr(path, '/');
  base = base ? base + 1 : path;
  const char* dot = strchr(base, '.');
  return denied_module(base, dot ? static_cast<std::size_t>(dot - base) : strlen(base));
}

// Whether `data` is the content of the trusted .pyc opened last, past its 16-byte header.
bool is_pending_pyc(const char* data, Py_ssize_t n) {
  if (!g_pending) return false;
  g_pending = false;
  const int fd = open(g_pending_pyc, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st;
  bool same = false;
  if (fstat(fd, &st) == 0 && st.st_size == n + 16) {
    char* buf = static_cast<char*>(malloc(static_cast<std::size_t>(st.st_size)));
    if (buf != nullptr && read_all(fd, buf, static_cast<std::size_t>(st.st_size)))
      same = memcmp(buf + 16, data, static_cast<std::size_t>(n)) == 0;
    free(buf);
  }
  close(fd);
  return same;
}

int deny(PyObject* type, const char* event) {
  PyErr_Format(type, "corral: %s is not available in a job (docs/jobs.md)", event);
  return -1;
}

// The audit hook of the job process (see the top of this file). Runs for every audited event of
// the interpreter; returns -1 with an exception set to deny it.
int audit_hook(const char* event, PyObject* args, void*) {
  if (starts_with(event, "ctypes.")) return deny(PyExc_PermissionError, event);
  if (strcmp(event, "sys.settrace") == 0 || strcmp(event, "sys.setprofile") == 0 ||
      strcmp(event, "code.__new__") == 0 || strcmp(event, "marshal.load") == 0 ||
      strcmp(event, "gc.get_objects") == 0 || strcmp(event, "gc.get_referrers") == 0 ||
      strcmp(event, "gc.get_referents") == 0 || strcmp(event, "sqlite3.enable_load_extension") == 0 ||
      strcmp(event, "sqlite3.load_extension") == 0)
    return deny(PyExc_PermissionError, event);
  if (strcmp(event, "import") == 0) {
    if (!PyTuple_Check(args) || PyTuple_GET_SIZE(args) < 2) return 0;
    PyObject* name = PyTuple_GET_ITEM(args, 0);
    PyObject* file = PyTuple_GET_ITEM(args, 1);
    if (PyUnicode_Check(name)) {
      const char* n = PyUnicode_AsUTF8(name);
      if (n == nullptr) return -1;
      if (denied_module_name(n)) return deny(PyExc_ImportError, n);
    }
    if (file != Py_None && PyUnicode_Check(file)) {
      const char* f = PyUnicode_AsUTF8(file);
      if (f == nullptr) return -1;
      // A native module (only native modules are named here with a path ending in .so):
      // the standard library's, and not one of the denied ones.
      if (ends_with(f, ".so") &&
          (!plain_absolute(f) || !starts_with(f, g_dynload_dir) || f[strlen(g_dynload_dir)] != '/' ||
           strchr(f + strlen(g_dynload_dir) + 1, '/') != nullptr || denied_module_file(f)))
        return deny(PyExc_ImportError, f);
    }
    return 0;
  }
  if (strcmp(event, "open") == 0) {
    if (!PyTuple_Check(args) || PyTuple_GET_SIZE(args) < 1) return 0;
    PyObject* path = PyTuple_GET_ITEM(args, 0);
    if (!PyUnicode_Check(path)) return 0;
    const char* p = PyUnicode_AsUTF8(path);
    if (p == nullptr) return -1;
    if (!ends_with(p, ".pyc")) return 0;
    // Bytecode only from the standard library's own files (the job can write none of them);
    // importlib then compiles the job's own modules from their source.
    if (!plain_absolute(p) || !starts_with(p, g_pyc_prefix) || strlen(p) >= sizeof g_pending_pyc)
      return deny(PyExc_PermissionError, "bytecode from this place");
    memcpy(g_pending_pyc, p, strlen(p) + 1);
    g_pending = true;
    return 0;
  }
  if (strcmp(event, "marshal.loads") == 0) {
    // importlib unmarshals the .pyc it has just read: allowed when the data is exactly that
    // file's. Anything else could carry a code object built by hand.
    if (PyTuple_Check(args) && PyTuple_GET_SIZE(args) >= 1 && PyBytes_Check(PyTuple_GET_ITEM(args, 0))) {
      PyObject* data = PyTuple_GET_ITEM(args, 0);
      if (is_pending_pyc(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))) return 0;
    }
    g_pending = false;
    return deny(PyExc_PermissionError, event);
  }
  return 0;
}

// -- the template ------------------------------------------------------------------------------

// enter_userns(): the template, once at its start. Afterwards the manager writes the identity
// uid and gid maps of the new namespace; the template then holds every capability there.
PyObject* enter_userns(PyObject*, PyObject*) {
  if (g_role != role::fresh) return refuse("enter_userns");
  if (unshare(CLONE_NEWUSER) != 0) return PyErr_SetFromErrno(PyExc_OSError);
  g_role = role::template_process;
  if (pthread_atfork(nullptr, nullptr, on_fork_child) != 0) return refuse("pthread_atfork");
  Py_RETURN_NONE;
}

// job_namespaces(): the template, before it forks a job process. The next child is PID 1 of a
// new PID namespace and lives in new IPC, UTS and network namespaces (the template's own ones
// are replaced too; it uses none of them).
PyObject* job_namespaces(PyObject*, PyObject*) {
  if (g_role != role::template_process) return refuse("job_namespaces");
  constexpr int flags = CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET;
  if (unshare(flags) == 0) Py_RETURN_NONE;
  if (errno != EINVAL) return PyErr_SetFromErrno(PyExc_OSError);
  // Linux (not gVisor) refuses a second CLONE_NEWPID until the caller's children go to its
  // own PID namespace again.
  const int self = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
  if (self < 0) return PyErr_SetFromErrno(PyExc_OSError);
  const int joined = setns(self, CLONE_NEWPID);
  const int saved = errno;
  close(self);
  if (joined != 0) {
    errno = saved;
    return PyErr_SetFromErrno(PyExc_OSError);
  }
  if (unshare(flags) != 0) return PyErr_SetFromErrno(PyExc_OSError);
  Py_RETURN_NONE;
}

// -- the job process ---------------------------------------------------------------------------

// arm(fd) -> spec length: the job process, first thing. Reads the token and the spec's length
// (4 bytes, little-endian) from fd. From here on this process is the job process and every
// template entry point refuses.
PyObject* arm(PyObject*, PyObject* arg) {
  if (g_role != role::template_process) return refuse("arm");
  const int fd = static_cast<int>(PyLong_AsLong(arg));
  if (fd < 0 && PyErr_Occurred()) return nullptr;
  g_role = role::job_process;
  unsigned char head[token_bytes + 4];
  if (!read_all(fd, head, sizeof head)) return PyErr_SetFromErrno(PyExc_EOFError);
  memcpy(g_token, head, token_bytes);
  g_armed = true;
  g_fork_copy = false;
  const uint32_t n = static_cast<uint32_t>(head[token_bytes]) |
                     static_cast<uint32_t>(head[token_bytes + 1]) << 8 |
                     static_cast<uint32_t>(head[token_bytes + 2]) << 16 |
                     static_cast<uint32_t>(head[token_bytes + 3]) << 24;
  return PyLong_FromUnsignedLong(n);
}

// seal(dynload_dir, pyc_prefix): the job process, once, right before the program. Installs the
// audit hook.
PyObject* seal(PyObject*, PyObject* args) {
  const char* dynload = nullptr;
  const char* pyc = nullptr;
  if (!PyArg_ParseTuple(args, "ss", &dynload, &pyc)) return nullptr;
  if (g_role != role::job_process || g_sealed) return refuse("seal");
  if (strlen(dynload) >= sizeof g_dynload_dir || strlen(pyc) >= sizeof g_pyc_prefix ||
      !plain_absolute(dynload) || !plain_absolute(pyc))
    return refuse("seal with these paths");
  memcpy(g_dynload_dir, dynload, strlen(dynload) + 1);
  memcpy(g_pyc_prefix, pyc, strlen(pyc) + 1);
  if (PySys_AddAuditHook(audit_hook, nullptr) != 0) return nullptr;
  g_sealed = true;
  Py_RETURN_NONE;
}

// Flushes sys.stdout and sys.stderr; false when either failed (the exception is cleared).
bool flush_streams() {
  bool ok = true;
  static const char* const names[] = {"stdout", "stderr"};
  for (const char* name : names) {
    PyObject* stream = PySys_GetObject(name);  // borrowed
    if (stream == nullptr || stream == Py_None) continue;
    PyObject* r = PyObject_CallMethod(stream, "flush", nullptr);
    if (r == nullptr) {
      PyErr_Clear();
      ok = false;
    } else {
      Py_DECREF(r);
    }
  }
  return ok;
}

// run(code, globals, done_fd): the job process, once, sealed. Evaluates the program. When its
// code object returns normally, waits for its non-daemon threads, flushes its streams, writes
// the token to done_fd and ends the process with status 0: it does not return. Returns False
// when the streams could not be flushed; raises what the program raised.
PyObject* run(PyObject*, PyObject* args) {
  PyObject* code = nullptr;
  PyObject* globals = nullptr;
  int done_fd = -1;
  if (!PyArg_ParseTuple(args, "O!O!i", &PyCode_Type, &code, &PyDict_Type, &globals, &done_fd))
    return nullptr;
  if (g_role != role::job_process || !g_armed || !g_sealed || g_fork_copy) return refuse("run");
  g_armed = false;
  PyObject* r = PyEval_EvalCode(code, globals, globals);
  if (r == nullptr) return nullptr;
  Py_DECREF(r);
  PyObject* threading = PyDict_GetItemString(PyImport_GetModuleDict(), "threading");  // borrowed
  if (threading != nullptr) {
    PyObject* s = PyObject_CallMethod(threading, "_shutdown", nullptr);
    if (s == nullptr) return nullptr;
    Py_DECREF(s);
  }
  if (!flush_streams()) Py_RETURN_FALSE;
  // A fork of the job process that ran the rest of the program ends like it, without the token:
  // only the job process itself speaks for the job.
  if (!g_fork_copy) write_all(done_fd, g_token, token_bytes);
  _exit(0);
}

// exec_javascript(argv, env, done_fd, euid): the job process, once, for a JavaScript job: hands
// the token to node's harness on fd 4 (a pipe holding just the token), the completion pipe on
// fd 3, switches the effective uid to `euid` (the harness switches back at once, which makes
// node's process not dumpable: docs/jobs.md) and execs argv[0] (searched in env's PATH).
// Returns only on failure (OSError).
PyObject* exec_javascript(PyObject*, PyObject* args) {
  PyObject* argv = nullptr;
  PyObject* env = nullptr;
  int done_fd = -1;
  unsigned int euid = 0;
  if (!PyArg_ParseTuple(args, "O!O!iI", &PyList_Type, &argv, &PyList_Type, &env, &done_fd, &euid))
    return nullptr;
  if (g_role != role::job_process || !g_armed || g_fork_copy) return refuse("exec_javascript");
  g_armed = false;
  const Py_ssize_t na = PyList_GET_SIZE(argv), ne = PyList_GET_SIZE(env);
  if (na < 1) return refuse("exec_javascript without argv");
  std::size_t slots = static_cast<std::size_t>(na + ne + 2);
  const char** ptrs = static_cast<const char**>(calloc(slots, sizeof(char*)));
  if (ptrs == nullptr) return PyErr_NoMemory();
  const char** cargv = ptrs;
  const char** cenv = ptrs + na + 1;
  for (Py_ssize_t i = 0; i < na; ++i)
    if ((cargv[i] = PyUnicode_AsUTF8(PyList_GET_ITEM(argv, i))) == nullptr) return free(ptrs), nullptr;
  for (Py_ssize_t i = 0; i < ne; ++i)
    if ((cenv[i] = PyUnicode_AsUTF8(PyList_GET_ITEM(env, i))) == nullptr) return free(ptrs), nullptr;
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return free(ptrs), PyErr_SetFromErrno(PyExc_OSError);
  const bool put = write_all(p[1], g_token, token_bytes);
  close(p[1]);
  // Out of the way of 3 and 4 first, then into place (dup2 leaves the targets open on exec).
  const int token_fd = fcntl(p[0], F_DUPFD_CLOEXEC, 10);
  const int done = fcntl(done_fd, F_DUPFD_CLOEXEC, 10);
  close(p[0]);
  if (!put || token_fd < 0 || done < 0 || dup2(done, 3) != 3 || dup2(token_fd, 4) != 4 ||
      setresuid(static_cast<uid_t>(-1), euid, static_cast<uid_t>(-1)) != 0) {
    free(ptrs);
    return PyErr_SetFromErrno(PyExc_OSError);
  }
  close(token_fd);
  close(done);
  // execvp searches the PATH of the calling process's environment: put the job's in place.
  char** const previous = environ;
  environ = const_cast<char**>(cenv);
  execvp(cargv[0], const_cast<char* const*>(cargv));
  const int saved = errno;
  environ = previous;
  free(ptrs);
  errno = saved;
  return PyErr_SetFromErrno(PyExc_OSError);
}

PyMethodDef methods[] = {
    {"enter_userns", enter_userns, METH_NOARGS, nullptr},
    {"job_namespaces", job_namespaces, METH_NOARGS, nullptr},
    {"arm", arm, METH_O, nullptr},
    {"seal", seal, METH_VARARGS, nullptr},
    {"run", run, METH_VARARGS, nullptr},
    {"exec_javascript", exec_javascript, METH_VARARGS, nullptr},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_corral_guest", nullptr, -1, methods,
                          nullptr, nullptr, nullptr, nullptr};

}  // namespace

extern "C" __attribute__((visibility("default"))) PyObject* PyInit__corral_guest() {
  return PyModule_Create(&module_def);
}
