# corral's job runner inside a sandbox (executor/jobs/). The executor starts it as
#   python3 -I -c <this file>
# and speaks framed JSON with it over stdin/stdout: a request is one job, the answer its result.
#   frame := b"CRZ1 " <decimal length> b"\n" <that many bytes of UTF-8 JSON>
#
# Three processes, so that nothing of one job can be seen by the next (docs/jobs.md):
#   manager  (this process, root in the sandbox): reads requests, feeds the job's stdin, collects
#            its output, enforces the timeout and the output cap, kills and wipes after the job.
#            It holds job data; nobody forks from it after the start.
#   template (forked at start, before any job data exists): enters a user namespace of its own
#            (the manager maps it identically), then forks one job process per job when the
#            manager asks (over a socketpair, passing the job's pipes as SCM_RIGHTS), each as
#            PID 1 of new PID, IPC, UTS and network namespaces; waits for it and reports its
#            status and rusage. Its memory never holds job data.
#   job      (forked from the template): reads its completion token and spec from its stdin
#            (ahead of the program's input, on the same pipe), becomes the job's own uid (a new
#            one per job), writes its files into a fresh directory of its own, then runs the
#            program: Python source in the pre-imported interpreter it was forked from, or execs
#            node / an argv.
# When the job process ends, its PID namespace ends with it: every process of the job is killed
# by the kernel. The manager then checks /proc until no process of any job uid is left (killing
# what it finds, whatever its state); one that survives the deadline retires the lease. It also
# removes everything the job could have written: its directory and new entries of /tmp,
# /var/tmp and /dev/shm (the only places a job uid may write in the image; a test checks that).
# Environment: each job gets only the env of its request.
# Every system call in a sandbox traps into gVisor (tens of microseconds on its ptrace platform),
# so the per-job bookkeeping is kept to few of them: the /proc scan does not read the status of
# init, the manager or the template, a scratch directory is listed only when
# its change time moved, job directories live in a directory of their own (so /tmp itself does
# not change for them), the template prepares what every job process would otherwise redo
# (signal dispositions, the standard streams' Python objects; the job's pipes arrive in fds 0-2),
# and the token and spec share the stdin pipe, written at once when they fit.
#
# "completed" (docs/jobs.md): the job process's native part (_corral_guest, embedded below)
# writes the job's token on the completion pipe only after the program's code object returned
# normally (Python), or node's harness does after the program's top level ran to its end and
# node ends on its own with 0 (JavaScript). The program never has the token: no output, write,
# signal or exit status of it makes a job completed.
import base64
import builtins
import errno
import hashlib
import json
import os
import select
import shutil
import signal
import socket
import struct
import sys
import time
import types
import zlib

# Warm the interpreter for what evaluation programs import most (forked jobs find them loaded).
# Only the common small ones: every page of the template is copied-on-write into each job, and a
# fork under gVisor costs by the size of what it forks.
import bisect, collections, copy, functools, hashlib, heapq, io, itertools  # noqa: E401,F401
import math, operator, random, re, string, threading, traceback, typing  # noqa: E401,F401

JOB_UID_BASE = 30000   # job n runs as JOB_UID_BASE + 2n (and + 2n + 1: JavaScript's harness)
JOB_UID_COUNT = 1 << 17  # uids of the range; a lease that would need more is retired first
WRITABLE = ["/tmp", "/var/tmp", "/dev/shm"]
JOBS_DIR = "/tmp/.corral-jobs"  # root's, 0711: a job reaches its own directory only
NATIVE_DIR = JOBS_DIR + "/.native"  # root's: the native part, loaded by the manager at start
HARD_OUTPUT_FACTOR = 16  # past output_limit * this (and at least 8 MiB) the job is killed
PIPE_CAPACITY = 65536  # what an empty pipe takes without blocking (Linux's and gVisor's default)
KILL_DEADLINE_S = 5    # every process of a job gone within this after it ends, or the lease goes
TOKEN_BYTES = 16
# Native modules load only from the standard library's directory, bytecode only from its files.
DYNLOAD_DIR = os.path.join(sys.base_prefix, sys.platlibdir,
                           "python%d.%d" % sys.version_info[:2], "lib-dynload")
PYC_PREFIX = os.path.join(sys.base_prefix, sys.platlibdir, "python3")
# executor/jobs/guest_native_unsafe.cpp, built for this interpreter: zlib, then base64.
NATIVE_BLOB = "@CORRAL_GUEST_NATIVE@"
# Node's permission model (node >= 20.11): no inspector, workers, native addons or
# process.binding for the program. Probed once per lease, at its first JavaScript job.
NODE_PERMISSION = ["--experimental-permission", "--allow-fs-read=*", "--allow-fs-write=*",
                   "--allow-child-process", "--disable-warning=ExperimentalWarning",
                   "--disable-warning=SecurityWarning"]

JS_HARNESS = r"""
'use strict';
const fs = require('fs');
const vm = require('vm');
// The effective uid changes back to the real one: node's process is then not dumpable, so the
// program cannot read the token from /proc/self/mem (docs/jobs.md).
process.seteuid(process.getuid());
const token = Buffer.alloc(16);
let got = 0;
try {
  while (got < 16) { const n = fs.readSync(4, token, got, 16 - got, null); if (n === 0) break; got += n; }
  fs.closeSync(4);
} catch (e) {}
const writeSync = fs.writeSync;
// What could read this process's memory or debug it, out of the program's reach (the
// permission model, when node has it, also denies them).
for (const [name, keys] of [['inspector', ['Session', 'open', 'url', 'waitForDebugger', 'close']],
                            ['worker_threads', ['Worker']],
                            ['v8', ['setFlagsFromString', 'getHeapSnapshot', 'writeHeapSnapshot']]]) {
  try { const m = require(name); for (const k of keys) delete m[k]; } catch (e) {}
}
for (const k of ['binding', '_linkedBinding', 'dlopen', '_debugProcess', '_debugEnd']) delete process[k];
delete require('module')._extensions['.node'];
process.on('SIGUSR1', () => {});
let early = false;
let ran = false;
const realExit = process.exit;
const realReallyExit = process.reallyExit;
process.exit = function (code) { early = true; return realExit.call(process, code); };
process.reallyExit = function (code) { early = true; return realReallyExit.call(process, code); };
process.on('exit', (code) => {
  if (ran && !early && code === 0 && !process.exitCode && got === 16) {
    try { writeSync(3, token); } catch (e) {}
  }
});
const main = process.argv[1];
// Compiled as a script first: a top-level return (which would end a module early without an
// exception) is a syntax error here.
new vm.Script(fs.readFileSync(main, 'utf8'), { filename: main });
require(main);
ran = true;
"""


def read_exact(fd, n):
    out = bytearray()
    while len(out) < n:
        chunk = os.read(fd, n - len(out))
        if not chunk:
            raise EOFError
        out += chunk
    return bytes(out)


class FrameReader:
    """Reads frames from fd through a buffer (one read per frame, not one per header byte)."""

    def __init__(self, fd):
        self.fd = fd
        self.buf = bytearray()

    def _fill(self, need):
        while len(self.buf) < need:
            chunk = os.read(self.fd, max(65536, need - len(self.buf)))
            if not chunk:
                raise EOFError
            self.buf += chunk

    def read(self):
        while True:
            nl = self.buf.find(b"\n", 0, 33)
            if nl >= 0:
                break
            if len(self.buf) > 32:
                raise ValueError("bad frame header")
            self._fill(len(self.buf) + 1)
        line = bytes(self.buf[:nl + 1])
        if not line.startswith(b"CRZ1 "):
            raise ValueError("bad frame header")
        n = int(line[5:-1])
        self._fill(nl + 1 + n)
        body = bytes(self.buf[nl + 1:nl + 1 + n])
        del self.buf[:nl + 1 + n]
        return json.loads(body)


def write_frame(fd, obj):
    body = json.dumps(obj, separators=(",", ":")).encode()
    data = b"CRZ1 %d\n" % len(body) + body
    while data:
        data = data[os.write(fd, data):]


# -- the job process (forked from the template) -----------------------------------------------

def job_main(done_fd):
    # The token goes to native memory that no Python object refers to; then the spec.
    spec = json.loads(read_exact(0, NATIVE.arm(0)))
    workdir = spec["workdir"]
    uid, uid_alt = spec["uid"], spec["uid_alt"]
    mode = spec["mode"]
    os.setsid()
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    # From root of the template's user namespace to the job's uid, with no capability left: this
    # also makes the process not dumpable (its memory unreadable through /proc, even to itself).
    # JavaScript's harness ends up not dumpable by switching its effective uid back from uid_alt.
    os.setresuid(uid, uid, uid_alt if mode == "javascript" else uid)
    os.umask(0o022)
    os.chdir(workdir)
    for f in spec.get("files", []):
        path = f["path"]
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "wb") as out:
            out.write(base64.b64decode(f["data"]))
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "TMPDIR": "/tmp",
           "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
    env.update(spec.get("env", {}))
    os.environ.clear()
    os.environ.update(env)
    if mode == "python":
        run_python(spec["source"], workdir, done_fd)
    if mode == "javascript":
        main = os.path.join(workdir, "main.js")
        with open(main, "w") as out:
            out.write(spec["source"])
        # NODE_OPTIONS could run code ahead of the harness (and read the token's pipe).
        env.pop("NODE_OPTIONS", None)
        argv = ["node"] + (NODE_PERMISSION if spec.get("node_permission") else []) + \
            ["-e", JS_HARNESS, main]
        try:
            NATIVE.exec_javascript(argv, ["%s=%s" % kv for kv in env.items()], done_fd, uid_alt)
        except OSError as e:
            exec_failed(argv[0], e)
    os.close(done_fd)
    argv = spec["argv"]
    try:
        os.execvpe(argv[0], argv, env)
    except OSError as e:
        exec_failed(argv[0], e)


def exec_failed(program, e):
    os.write(2, ("corral: cannot run %s: %s\n" % (program, e.strerror)).encode())
    os._exit(127 if e.errno in (errno.ENOENT, errno.ENOTDIR) else 126)


def run_python(source, workdir, done_fd):
    main = os.path.join(workdir, "main.py")
    sys.argv = [main]
    sys.path.insert(0, workdir)
    sys.dont_write_bytecode = True
    # (random reseeds itself in every forked process: it registers os.register_at_fork.)
    # Tracebacks show the program's own lines.
    import linecache
    linecache.cache[main] = (len(source), None, source.splitlines(True), main)
    # The program's module is __main__ (not this runner's), and the native part is out of
    # sys.modules (its entry points refuse a second use anyway).
    module = types.ModuleType("__main__")
    module.__dict__.update({"__file__": main, "__builtins__": builtins})
    sys.modules["__main__"] = module
    sys.modules.pop("_corral_guest", None)
    code = 0
    try:
        program = compile(source, main, "exec")
        NATIVE.seal(DYNLOAD_DIR, PYC_PREFIX)
        # Does not return when the program ran to its end: it writes the token and exits 0.
        if NATIVE.run(program, module.__dict__, done_fd) is False:
            code = 120  # its output could not be flushed
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if not isinstance(e.code, (int, type(None))):
            print(e.code, file=sys.stderr)
    except BaseException as e:
        # The program's frames only: the harness's own frame is not part of its traceback.
        traceback.print_exception(type(e), e, e.__traceback__.tb_next)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            code = code or 120
    os._exit(code & 0xFF)


# -- the template ----------------------------------------------------------------------------

def template_main(sock):
    devnull = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    # Set up once here what every job process inherits: default signal dispositions, and the
    # Python objects of its standard streams (on fds 0-2, which each job process points at its
    # own pipes before it runs anything; nothing is ever buffered in them here).
    for s in (signal.SIGPIPE, signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
        signal.signal(s, signal.SIG_DFL)
    sys.stdin = open(0, "r", closefd=False)
    sys.stdout = open(1, "w", closefd=False)
    sys.stderr = open(2, "w", closefd=False, buffering=1)
    # Then fds 0-2 are closed here: a job's stdin, stdout and stderr arrive in them (received
    # fds take the lowest free numbers, in order), so the job process finds them in place.
    for fd in (0, 1, 2):
        os.close(fd)
    # A user namespace of its own, which the manager maps identically (uid_map, gid_map): the
    # template holds every capability there, enough to give each job its own PID namespace,
    # and no more than root's in the sandbox.
    NATIVE.enter_userns()
    sock.sendall(b"U")
    if sock.recv(1) != b"M":
        os._exit(0)
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(sock, 16, 5)
        except OSError:
            os._exit(0)
        if not msg:
            os._exit(0)
        done_fd = fds[3]
        NATIVE.job_namespaces()
        pid = os.fork()
        if pid == 0:
            sock.close()
            for want, fd in enumerate(fds[:3]):
                if fd != want:  # not in place (not expected): move it there
                    os.dup2(fd, want)
                    os.close(fd)
            try:
                job_main(done_fd)
            except BaseException:
                traceback.print_exc()
            os._exit(125)
        for fd in fds:
            os.close(fd)
        _, status, ru = os.wait4(pid, 0)
        cpu_ms = int((ru.ru_utime + ru.ru_stime) * 1000)
        sock.sendall(struct.pack("<4siqq", b"END ", status, cpu_ms, ru.ru_maxrss))


# -- the manager ------------------------------------------------------------------------------

def load_native():
    """Writes the native part where only root can change it and imports it (once, at start)."""
    global NATIVE
    os.mkdir(NATIVE_DIR, 0o711)
    path = NATIVE_DIR + "/_corral_guest.so"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o500)
    try:
        data = zlib.decompress(base64.b64decode(NATIVE_BLOB))
        while data:
            data = data[os.write(fd, data):]
    finally:
        os.close(fd)
    sys.path.insert(0, NATIVE_DIR)
    try:
        import _corral_guest
    finally:
        sys.path.pop(0)
    NATIVE = _corral_guest


NATIVE = None


def job_uid(uid):
    return JOB_UID_BASE <= uid < JOB_UID_BASE + JOB_UID_COUNT


def job_pids(known):
    """Every process of any job's uid (real uid), whatever its state."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or name in known:
            continue
        try:
            fd = os.open("/proc/%s/status" % name, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            st = os.read(fd, 4096).decode("ascii", "replace")
        except OSError:
            continue
        finally:
            os.close(fd)
        for line in st.splitlines():
            if line.startswith("Uid:"):
                if job_uid(int(line.split()[1])):
                    pids.append(int(name))
                break
    return pids


def kill_job_processes(known, deadline):
    """Kills every process of a job uid until none is left; False if some survive the deadline.

    A zombie is killed too: a process whose main thread has exited while others run shows as
    one. A real zombie disappears once reaped (the job's PID namespace has ended, so nothing of
    it waits for a parent any more)."""
    while True:
        pids = job_pids(known)
        if not pids:
            return True
        if time.monotonic() >= deadline:
            return False
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.002)


def dir_stamp(d):
    try:
        st = os.stat(d)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_ctime_ns)


def remove(path):
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
    except OSError:
        pass


def wipe(baseline, stamps, workdir):
    try:
        os.rmdir(workdir)  # the common case: the job wrote nothing there
    except OSError:
        remove(workdir)
    for d in WRITABLE:
        if stamps.get(d) is not None and dir_stamp(d) == stamps[d]:
            continue  # no entry of d was added, removed or renamed
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for name in names:
            if (d, name) not in baseline:
                remove(os.path.join(d, name))
        stamps[d] = dir_stamp(d)


class Manager:
    def __init__(self):
        self.sock, tsock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        remove(JOBS_DIR)
        os.mkdir(JOBS_DIR, 0o711)
        os.chmod(JOBS_DIR, 0o711)
        load_native()
        self.baseline = {(d, n) for d in WRITABLE if os.path.isdir(d) for n in os.listdir(d)}
        self.stamps = {d: dir_stamp(d) for d in WRITABLE}
        self.template = os.fork()
        if self.template == 0:
            self.sock.close()
            template_main(tsock)
        tsock.close()
        # The template's user namespace: identity-mapped (written from here, the parent
        # namespace, which holds CAP_SETUID and CAP_SETGID).
        if self._recv(1) != b"U":
            raise EOFError("the template did not start")
        for name in ("uid_map", "gid_map"):
            fd = os.open("/proc/%d/%s" % (self.template, name), os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, b"0 0 4294967295\n")
            finally:
                os.close(fd)
        self.sock.sendall(b"M")
        # Tokens and directory names of jobs come from a key only this process ever holds
        # (made after the template was forked: no job process has a copy of it).
        self.key = os.urandom(32)
        # init, the manager and the template live as long as the runner and are never a job's:
        # the scan does not read them. (Other processes are read each time: pids are reused in
        # a long run, so one that has gone could come back as a job's.)
        self.known = {"1", str(os.getpid()), str(self.template)}
        self.seq = 0
        self.node_permission = None  # probed at the first JavaScript job

    def probe_node_permission(self):
        if self.node_permission is None:
            try:
                devnull = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
                try:
                    pid = os.posix_spawnp("node", ["node"] + NODE_PERMISSION + ["-e", "0"], {
                        "PATH": "/usr/local/bin:/usr/bin:/bin"}, file_actions=[
                        (os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)])
                finally:
                    os.close(devnull)
                _, status = os.waitpid(pid, 0)
                self.node_permission = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
            except OSError:
                self.node_permission = False
        return self.node_permission

    def run(self, req):
        started = time.monotonic()
        started_ms = int(time.time() * 1000)
        limit = int(req.get("output_limit") or 65536)
        hard = max(8 << 20, limit * HARD_OUTPUT_FACTOR)
        timeout = max(1, int(req.get("timeout_ms") or 60000)) / 1000.0
        self.seq += 1
        # A uid of its own (none of an earlier job's processes or files has it) and a directory
        # no earlier job could have named, made here by root.
        uid = JOB_UID_BASE + 2 * self.seq
        if uid + 1 >= JOB_UID_BASE + JOB_UID_COUNT:
            raise RuntimeError("this lease has used every job uid")
        secret = hashlib.blake2b(b"%d" % self.seq, key=self.key, digest_size=32).digest()
        token = secret[:TOKEN_BYTES]
        workdir = "%s/%s" % (JOBS_DIR, secret[TOKEN_BYTES:].hex())
        os.mkdir(workdir, 0o700)
        os.chown(workdir, uid, uid)
        mode = req.get("mode", "python")
        spec = {"mode": mode, "source": req.get("source", ""), "argv": req.get("argv", []),
                "files": req.get("files", []), "env": req.get("env", {}), "workdir": workdir,
                "uid": uid, "uid_alt": uid + 1}
        if mode == "javascript":
            spec["node_permission"] = self.probe_node_permission()
        spec_bytes = json.dumps(spec).encode()
        stdin_data = base64.b64decode(req.get("stdin", ""))
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        done_r, done_w = os.pipe()
        socket.send_fds(self.sock, [b"RUN"], [in_r, out_w, err_w, done_w])
        for fd in (in_r, out_w, err_w, done_w):
            os.close(fd)
        # The job reads its token and spec from its stdin first, then the program reads the rest.
        # What fits in the (empty) pipe is written at once, without blocking; the rest as the job
        # reads it.
        pending_in = token + struct.pack("<I", len(spec_bytes)) + spec_bytes + stdin_data
        writers = []  # in_w while stdin remains to be fed
        if len(pending_in) <= PIPE_CAPACITY:
            try:
                os.write(in_w, pending_in)
            except BrokenPipeError:
                pass  # the job is over already
            os.close(in_w)
        else:
            os.set_blocking(in_w, False)
            writers.append(in_w)
        bufs = {out_r: bytearray(), err_r: bytearray()}
        counts = {out_r: 0, err_r: 0}
        done = bytearray()  # what came on the completion pipe (beyond the token's length: spoiled)
        survivors = False
        end = None       # (tag, wait status, cpu ms, maxrss KiB) once the job process ended
        outcome = None   # "timeout" | "output_limit" when the manager ended the job
        deadline = started + timeout
        drain_deadline = None
        readers = [out_r, err_r, done_r, self.sock.fileno()]
        while any(fd in readers for fd in (out_r, err_r, done_r)) or end is None:
            now = time.monotonic()
            if end is None and now >= deadline:
                outcome = "timeout"
                break
            if drain_deadline is not None and now >= drain_deadline:
                break  # a pipe still open after every job process was killed: give up on it
            limit_at = deadline if end is None else drain_deadline
            r, w, _ = select.select(readers, writers, [], max(0.0, limit_at - now))
            for fd in w:
                try:
                    pending_in = pending_in[os.write(fd, pending_in[:65536]):]
                except BrokenPipeError:
                    pending_in = b""  # the job stopped reading
                if not pending_in:
                    os.close(fd)
                    writers.remove(fd)
            for fd in r:
                if fd == self.sock.fileno():
                    end = struct.unpack("<4siqq", self._recv(24))
                    readers.remove(fd)
                    # The job process is over, and with it its PID namespace: every process of
                    # the job is being killed. Checked here (and anything left killed), so that
                    # its pipes close and nothing of it meets the next job.
                    survivors = not kill_job_processes(self.known,
                                                       time.monotonic() + KILL_DEADLINE_S)
                    drain_deadline = time.monotonic() + KILL_DEADLINE_S
                    continue
                data = os.read(fd, 65536)
                if not data:
                    readers.remove(fd)
                    continue
                if fd == done_r:
                    if len(done) <= TOKEN_BYTES:
                        done += data[:TOKEN_BYTES + 1]
                    continue
                counts[fd] += len(data)
                room = limit - len(bufs[fd])
                if room > 0:
                    bufs[fd] += data[:room]
                if counts[out_r] + counts[err_r] > hard:
                    outcome = "output_limit"
            if outcome:
                break
        wall_ms = int((time.monotonic() - started) * 1000)
        if end is None or any(fd in readers for fd in (out_r, err_r, done_r)):
            # Ended by the manager (timeout, output cap), or a pipe still open after the scan
            # that followed the job process's end.
            survivors = not kill_job_processes(self.known, time.monotonic() + KILL_DEADLINE_S) \
                or survivors
        if end is None:
            end = struct.unpack("<4siqq", self._recv(24))
        for fd in writers + [out_r, err_r, done_r]:
            try:
                os.close(fd)
            except OSError:
                pass
        _, status, cpu_ms, maxrss = end
        wipe(self.baseline, self.stamps, workdir)
        # Completed: the job's own token, exactly, and the job process exited with 0. The program
        # never had the token; whatever else came on the pipe spoils it.
        completed = (mode != "argv" and outcome is None and bytes(done) == token and
                     os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0)
        res = {"id": req.get("id", ""), "completed": completed,
               "stdout": base64.b64encode(bytes(bufs[out_r])).decode(),
               "stderr": base64.b64encode(bytes(bufs[err_r])).decode(),
               "stdout_bytes": counts[out_r], "stderr_bytes": counts[err_r],
               "stdout_truncated": counts[out_r] > len(bufs[out_r]),
               "stderr_truncated": counts[err_r] > len(bufs[err_r]),
               "wall_ms": wall_ms, "cpu_ms": cpu_ms, "maxrss_kib": maxrss,
               "started_at_ms": started_ms}
        if survivors:
            # Something of this job outlived every kill: the sandbox is not used again.
            res["retire"] = "a process of the job survived %d s of kills" % KILL_DEADLINE_S
        if outcome == "timeout":
            res.update(outcome="timeout", exit_code=124, signal=signal.SIGKILL,
                       message="timed out after %d ms; every process of the job was killed"
                       % int(timeout * 1000))
        elif outcome == "output_limit":
            res.update(outcome="output_limit", exit_code=137, signal=signal.SIGKILL,
                       message="more than %d bytes of output; every process of the job was killed"
                       % hard)
        elif os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            res.update(outcome="signaled", exit_code=128 + sig, signal=sig)
        else:
            code = os.WEXITSTATUS(status)
            res.update(outcome="exited", exit_code=code, signal=0)
            if code == 127 and mode == "argv":
                res.update(outcome="rejected", message="executable not found")
        return res

    def _recv(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise EOFError("the template died")
            data += chunk
        return data


def main():
    # SIGPIPE stays ignored here (Python's default): a job that exits without reading all of
    # its stdin makes the manager's next write to it fail with EPIPE, which is handled; the
    # signal would kill the manager. (The template gives its jobs the default disposition.)
    manager = Manager()
    write_frame(1, {"ready": True, "pid": os.getpid()})
    requests = FrameReader(0)
    while True:
        try:
            req = requests.read()
        except EOFError:
            break
        try:
            res = manager.run(req)
        except Exception as e:  # the runner itself failed: say so, keep serving
            res = {"id": req.get("id", ""), "outcome": "internal", "exit_code": 255, "signal": 0,
                   "message": "guest runner: %s: %s" % (type(e).__name__, e), "completed": False,
                   "retire": "the guest runner failed"}
        write_frame(1, res)
    os._exit(0)


if __name__ == "__main__":
    main()
