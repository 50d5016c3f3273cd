# corral's job runner inside a sandbox (executor/jobs/). The executor starts it as
#   python3 -I -c <this file>
# and speaks framed JSON with it over stdin/stdout: a request is one job, the answer its result.
#   frame := b"CRZ1 " <decimal length> b"\n" <that many bytes of UTF-8 JSON>
#
# Three processes, so that nothing of one job can be seen by the next:
#   manager  (this process, root in the sandbox): reads requests, feeds the job's stdin, collects
#            its output, enforces the timeout and the output cap, kills and wipes after the job.
#            It holds job data; nobody forks from it after the start.
#   template (forked at start, before any job data exists, root): forks one job process per job
#            when the manager asks (over a socketpair, passing the job's pipes as SCM_RIGHTS), waits
#            for it and reports its status and rusage. Its memory never holds job data.
#   job      (forked from the template): becomes the unprivileged job user in its own user, IPC,
#            UTS and network namespaces, reads its spec from its stdin (ahead of the program's
#            input, on the same pipe), writes its files into a fresh directory, then runs the
#            program: Python source in the pre-imported interpreter it was forked from, or execs
#            node / an argv.
# After each job the manager kills every process of the job user (scanning /proc until none is
# left) and removes everything the job user could have written: the job directory and new
# entries of /tmp, /var/tmp and /dev/shm (the only places the job user may write in the image;
# a test checks that). Environment: each job gets only the env of its request.
# Every system call in a sandbox traps into gVisor (tens of microseconds on its ptrace platform),
# so the per-job bookkeeping is kept to few of them: the /proc scan does not read the status of
# init, the manager or the template, a scratch directory is listed only when
# its change time moved, job directories live in a directory of their own (so /tmp itself does
# not change for them), the template prepares what every job process would otherwise redo
# (signal dispositions, the standard streams' Python objects; the job's pipes arrive in fds 0-2),
# and the spec shares the stdin pipe, written at once when it fits.
#
# "completed": the program ran to its end and raised nothing. The job process signals it on a
# private pipe after the program returns; exiting early (even with status 0), raising, or being
# killed leaves it unset. A program that deliberately writes to that pipe can forge it: the flag
# guards against early exits and crashes, as HumanEval's own harness does, not against forgery.
import base64
import builtins
import ctypes
import errno
import json
import os
import select
import shutil
import signal
import socket
import struct
import sys
import time

# Warm the interpreter for what evaluation programs import most (forked jobs find them loaded).
# Only the common small ones: every page of the template is copied-on-write into each job, and a
# fork under gVisor costs by the size of what it forks.
import bisect, collections, copy, functools, hashlib, heapq, io, itertools  # noqa: E401,F401
import math, operator, random, re, string, threading, traceback, typing  # noqa: E401,F401

LIBC = ctypes.CDLL(None, use_errno=True)

JOB_UID = 30000
WRITABLE = ["/tmp", "/var/tmp", "/dev/shm"]
JOBS_DIR = "/tmp/.corral-jobs"  # root's, 0711: the job user reaches its own directory only
CLONE_NEWUSER, CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWNET = 0x10000000, 0x08000000, 0x04000000, 0x40000000
HARD_OUTPUT_FACTOR = 16  # past output_limit * this (and at least 8 MiB) the job is killed
PIPE_CAPACITY = 65536  # what an empty pipe takes without blocking (Linux's and gVisor's default)

JS_HARNESS = r"""
const fs = require('fs');
let early = false;
const realExit = process.exit;
process.exit = function (code) { early = true; return realExit.call(process, code); };
process.on('exit', (code) => {
  if (!early && code === 0 && !process.exitCode) { try { fs.writeSync(3, 'C'); } catch (e) {} }
});
require(process.argv[1]);
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
    spec = json.loads(read_exact(0, struct.unpack("<I", read_exact(0, 4))[0]))
    workdir = spec["workdir"]
    os.setsid()
    os.setgroups([])
    os.setgid(JOB_UID)
    os.setuid(JOB_UID)
    if LIBC.unshare(CLONE_NEWUSER | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET) != 0:
        os.write(2, b"corral: cannot isolate the job (unshare failed)\n")
        os._exit(125)
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
    mode = spec["mode"]
    if mode == "python":
        run_python(spec["source"], workdir, done_fd)
    if mode == "javascript":
        main = os.path.join(workdir, "main.js")
        with open(main, "w") as out:
            out.write(spec["source"])
        os.dup2(done_fd, 3)
        argv = ["node", "-e", JS_HARNESS, main]
    else:
        os.close(done_fd)
        argv = spec["argv"]
    try:
        os.execvpe(argv[0], argv, env)
    except OSError as e:
        os.write(2, ("corral: cannot run %s: %s\n" % (argv[0], e.strerror)).encode())
        os._exit(127 if e.errno in (errno.ENOENT, errno.ENOTDIR) else 126)


def run_python(source, workdir, done_fd):
    main = os.path.join(workdir, "main.py")
    sys.argv = [main]
    sys.path.insert(0, workdir)
    # (random reseeds itself in every forked process: it registers os.register_at_fork.)
    # Tracebacks show the program's own lines.
    import linecache
    linecache.cache[main] = (len(source), None, source.splitlines(True), main)
    code = 0
    completed = False
    try:
        exec(compile(source, main, "exec"), {"__name__": "__main__", "__file__": main,
                                              "__builtins__": builtins})
        if "threading" in sys.modules:
            sys.modules["threading"]._shutdown()
        completed = True
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
            completed = False
    if completed:
        os.write(done_fd, b"C")
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
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(sock, 16, 5)
        except OSError:
            os._exit(0)
        if not msg:
            os._exit(0)
        done_fd = fds[3]
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

def job_pids(known):
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
        uid = state = None
        for line in st.splitlines():
            if line.startswith("Uid:"):
                uid = int(line.split()[1])
            elif line.startswith("State:"):
                state = line.split()[1]
        if uid == JOB_UID and state != "Z":
            pids.append(int(name))
    return pids


def kill_job_processes(known, deadline):
    while time.monotonic() < deadline:
        pids = job_pids(known)
        if not pids:
            return True
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
    return False


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
        self.baseline = {(d, n) for d in WRITABLE if os.path.isdir(d) for n in os.listdir(d)}
        self.stamps = {d: dir_stamp(d) for d in WRITABLE}
        self.template = os.fork()
        if self.template == 0:
            self.sock.close()
            template_main(tsock)
        tsock.close()
        # init, the manager and the template live as long as the runner and are never the job
        # user's: the scan does not read them. (Other processes are read each time: pids are
        # reused in a long run, so one that has gone could come back as a job's.)
        self.known = {"1", str(os.getpid()), str(self.template)}
        self.seq = 0

    def run(self, req):
        started = time.monotonic()
        started_ms = int(time.time() * 1000)
        limit = int(req.get("output_limit") or 65536)
        hard = max(8 << 20, limit * HARD_OUTPUT_FACTOR)
        timeout = max(1, int(req.get("timeout_ms") or 60000)) / 1000.0
        self.seq += 1
        workdir = "%s/job-%d" % (JOBS_DIR, self.seq)
        os.mkdir(workdir, 0o700)
        os.chown(workdir, JOB_UID, JOB_UID)
        mode = req.get("mode", "python")
        spec = {"mode": mode, "source": req.get("source", ""), "argv": req.get("argv", []),
                "files": req.get("files", []), "env": req.get("env", {}), "workdir": workdir}
        spec_bytes = json.dumps(spec).encode()
        stdin_data = base64.b64decode(req.get("stdin", ""))
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        done_r, done_w = os.pipe()
        socket.send_fds(self.sock, [b"RUN"], [in_r, out_w, err_w, done_w])
        for fd in (in_r, out_w, err_w, done_w):
            os.close(fd)
        # The job reads its spec from its stdin first, then the program reads the rest. What fits
        # in the (empty) pipe is written at once, without blocking; the rest as the job reads it.
        pending_in = struct.pack("<I", len(spec_bytes)) + spec_bytes + stdin_data
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
        completed = False
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
                    # The program is over: whatever it left running goes now, so its pipes close.
                    kill_job_processes(self.known, time.monotonic() + 5)
                    drain_deadline = time.monotonic() + 5
                    continue
                data = os.read(fd, 65536)
                if not data:
                    readers.remove(fd)
                    continue
                if fd == done_r:
                    completed = completed or b"C" in data
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
            kill_job_processes(self.known, time.monotonic() + 5)
        if end is None:
            end = struct.unpack("<4siqq", self._recv(24))
        for fd in writers + [out_r, err_r, done_r]:
            try:
                os.close(fd)
            except OSError:
                pass
        _, status, cpu_ms, maxrss = end
        wipe(self.baseline, self.stamps, workdir)
        res = {"id": req.get("id", ""), "completed": completed and outcome is None,
               "stdout": base64.b64encode(bytes(bufs[out_r])).decode(),
               "stderr": base64.b64encode(bytes(bufs[err_r])).decode(),
               "stdout_bytes": counts[out_r], "stderr_bytes": counts[err_r],
               "stdout_truncated": counts[out_r] > len(bufs[out_r]),
               "stderr_truncated": counts[err_r] > len(bufs[err_r]),
               "wall_ms": wall_ms, "cpu_ms": cpu_ms, "maxrss_kib": maxrss,
               "started_at_ms": started_ms}
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
                   "message": "guest runner: %s: %s" % (type(e).__name__, e), "completed": False}
        write_frame(1, res)
    os._exit(0)


if __name__ == "__main__":
    main()
