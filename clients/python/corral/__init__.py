"""corral's Python client: sandboxes over the gateway's HTTP API (docs/openapi.yaml).

Standard library only. Mirrors Modal's Sandbox API::

    import corral
    sb = corral.Sandbox.create(timeout=600, cpu=1, memory=512, tags={"run": "42"})
    p = sb.exec("python3", "-c", "print(input()[::-1])")
    p.stdin.write(b"hello\\n"); p.stdin.write_eof()
    print(p.stdout.read(), p.wait())            # olleh 0
    sb.terminate()

Configured by the environment: CORRAL_URL (default http://127.0.0.1:8080) and CORRAL_TOKEN.
"""

import base64
import http.client
import json
import os
import socket
import time
import urllib.parse

__all__ = [
    "Sandbox", "ContainerProcess", "StreamReader", "StreamWriter", "FileSystem",
    "Error", "NotFoundError", "InvalidArgumentError", "AuthError", "ConflictError",
    "ResourceExhaustedError", "UnavailableError", "TimeoutError", "ExpiredError",
]


class Error(Exception):
    """An error the gateway answered: .code is its error code, .status the HTTP status."""

    def __init__(self, message, code="internal", status=0):
        super().__init__(message)
        self.code = code
        self.status = status


class NotFoundError(Error):
    pass


class InvalidArgumentError(Error):
    pass


class AuthError(Error):
    pass


class ConflictError(Error):
    pass


class ResourceExhaustedError(Error):
    pass


class UnavailableError(Error):
    pass


class TimeoutError(Error):  # noqa: A001 - mirrors Modal's corral.TimeoutError
    pass


class ExpiredError(Error):
    pass


_ERRORS = {
    "not_found": NotFoundError, "invalid_argument": InvalidArgumentError,
    "too_large": InvalidArgumentError, "unauthenticated": AuthError,
    "already_exists": ConflictError, "failed_precondition": ConflictError,
    "resource_exhausted": ResourceExhaustedError, "unavailable": UnavailableError,
    "deadline_exceeded": TimeoutError, "expired": ExpiredError,
}

# A broken output stream is resumed from its last offset: first after _RECONNECT_FIRST_DELAY
# seconds, then after twice as long each time (at most _RECONNECT_MAX_DELAY), for as long as
# _RECONNECT_WINDOW seconds pass without any new output; then UnavailableError. A window long
# enough for a gateway to restart, or a load balancer to move to another replica.
_RECONNECT_WINDOW = 30.0
_RECONNECT_FIRST_DELAY = 0.05
_RECONNECT_MAX_DELAY = 1.0


class _Client:
    def __init__(self, url=None, token=None):
        self.url = urllib.parse.urlsplit(url or os.environ.get("CORRAL_URL", "http://127.0.0.1:8080"))
        self.token = token if token is not None else os.environ.get("CORRAL_TOKEN", "")

    def _connection(self, timeout):
        cls = http.client.HTTPSConnection if self.url.scheme == "https" else http.client.HTTPConnection
        return cls(self.url.hostname, self.url.port, timeout=timeout)

    def _target(self, path, query):
        target = self.url.path.rstrip("/") + path
        if query:
            target += "?" + urllib.parse.urlencode(query, doseq=True)
        return target

    def open(self, method, path, query=None, body=None, timeout=None):
        """Sends a request; returns (connection, response) with the body unread. Raises typed errors."""
        headers = {"Authorization": "Bearer " + self.token}
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn = self._connection(timeout)
        try:
            conn.request(method, self._target(path, query), body=body, headers=headers)
            res = conn.getresponse()
        except socket.timeout as e:
            conn.close()
            raise TimeoutError("no answer from the gateway in time", "deadline_exceeded") from e
        except OSError as e:
            conn.close()
            raise UnavailableError("cannot reach the gateway: %s" % e, "unavailable") from e
        if res.status >= 400:
            data = res.read()
            conn.close()
            try:
                err = json.loads(data)["error"]
                code, message = err.get("code", "internal"), err.get("message", "")
            except (ValueError, KeyError, TypeError):
                code, message = "internal", data.decode(errors="replace")
            raise _ERRORS.get(code, Error)(message, code, res.status)
        return conn, res

    def call(self, method, path, query=None, body=None, timeout=None, raw=False):
        conn, res = self.open(method, path, query, body, timeout)
        try:
            data = res.read()
        except socket.timeout as e:
            raise TimeoutError("no answer from the gateway in time", "deadline_exceeded") from e
        except http.client.IncompleteRead as e:
            # A streamed answer (a large file) that the gateway had to abort: never a short one.
            raise UnavailableError("the answer was cut short after %d bytes" % len(e.partial),
                                   "unavailable") from e
        finally:
            conn.close()
        return data if raw else json.loads(data or b"{}")


_default_client = None


def _client():
    global _default_client
    if _default_client is None:
        _default_client = _Client()
    return _default_client


class StreamWriter:
    """A process's stdin."""

    def __init__(self, process):
        self._p = process

    def write(self, data):
        if isinstance(data, str):
            data = data.encode()
        self._p._sb._c.call("POST", self._p._path("/stdin"), body=bytes(data))

    def write_eof(self):
        """Closes stdin. A process that has already exited has no stdin left to close: that is
        not an error (it may well have finished reading before the close arrived)."""
        try:
            self._p._sb._c.call("POST", self._p._path("/stdin"), {"eof": "1"}, body=b"")
        except ConflictError as e:
            if e.code != "failed_precondition":
                raise

    def drain(self):
        """Writes are sent when write() returns; nothing is buffered here."""


class StreamReader:
    """A process's stdout or stderr: read() all of it, or iterate over its lines. Follows the
    output live; a dropped connection is resumed from the last offset received."""

    def __init__(self, process, stream):
        self._p = process
        self._stream = stream
        self._offset = 0

    def _chunks(self, timeout=None):
        """Yields the stream's bytes from self._offset on, each byte once and in order, until the
        exit frame. A connection that breaks (refused, reset, cut mid-frame, or a frame past our
        offset) is opened again from self._offset; see _RECONNECT_WINDOW."""
        broken_since, delay = None, _RECONNECT_FIRST_DELAY
        while True:
            query = {"stream": self._stream, "offset": str(self._offset), "follow": "1"}
            try:
                conn, res = self._p._sb._c.open("GET", self._p._path("/output"), query, timeout=timeout)
            except UnavailableError:
                conn = None
            if conn is not None:
                try:
                    while True:
                        try:
                            line = res.readline()
                        except socket.timeout as e:
                            raise TimeoutError("no output in time", "deadline_exceeded") from e
                        if not line.endswith(b"\n"):
                            break  # the stream broke, maybe mid-frame: resume from our offset
                        frame = json.loads(line)
                        if "exit" in frame:
                            self._p._exit = frame["exit"]
                            return
                        if "error" in frame:
                            err = frame["error"]
                            raise _ERRORS.get(err.get("code"), Error)(err.get("message", ""), err.get("code"))
                        at = frame["offset"]
                        if at > self._offset:
                            break  # bytes missing before this frame: ask again from our offset
                        data = base64.b64decode(frame["data"])
                        end = at + len(data)
                        if end <= self._offset:
                            continue  # already delivered
                        data = data[self._offset - at:]
                        self._offset = end
                        broken_since, delay = None, _RECONNECT_FIRST_DELAY
                        yield data
                except (http.client.HTTPException, OSError):
                    pass  # the connection broke: resume below
                finally:
                    conn.close()
            now = time.monotonic()
            if broken_since is None:
                broken_since = now
            elif now - broken_since > _RECONNECT_WINDOW:
                raise UnavailableError("the output stream stayed broken for %gs" % _RECONNECT_WINDOW,
                                       "unavailable")
            time.sleep(delay)
            delay = min(delay * 2, _RECONNECT_MAX_DELAY)

    def _decode(self, data):
        return data.decode(errors="replace") if self._p._text else data

    def read(self, timeout=None):
        """Everything the stream has until the process ends."""
        return self._decode(b"".join(self._chunks(timeout)))

    def __iter__(self):
        pending = b""
        for chunk in self._chunks():
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                yield self._decode(line + b"\n")
        if pending:
            yield self._decode(pending)


class ContainerProcess:
    """One exec in a sandbox (Modal's ContainerProcess)."""

    def __init__(self, sandbox, exec_id, text=True):
        self._sb = sandbox
        self.object_id = exec_id
        self._text = text
        self._exit = None
        self.stdin = StreamWriter(self)
        self.stdout = StreamReader(self, "stdout")
        self.stderr = StreamReader(self, "stderr")

    def _path(self, suffix=""):
        return "/v1/sandboxes/%s/execs/%s%s" % (self._sb.object_id, self.object_id, suffix)

    @property
    def returncode(self):
        return None if self._exit is None else self._exit["returncode"]

    @property
    def status(self):
        """How the process ended: "exited", "signaled", "timeout", "oom_killed", "output_limit",
        "executor_lost", "rejected" or "internal"; None while it runs (or before poll/wait)."""
        return None if self._exit is None else self._exit.get("status")

    def poll(self):
        """The return code if the process has ended, else None (does not block)."""
        if self._exit is None:
            info = self._sb._c.call("GET", self._path())
            if info.get("finished"):
                self._exit = info
        return self.returncode

    def wait(self, timeout=None):
        """Blocks until the process ends; returns its return code. TimeoutError past timeout."""
        if self._exit is None:
            # Follow the output past its end: only the exit frame comes.
            waiter = StreamReader(self, "stdout")
            waiter._offset = 1 << 62
            for _ in waiter._chunks(timeout):
                pass
        return self.returncode

    def signal(self, signum):
        self._sb._c.call("POST", self._path("/signal"), body={"signal": int(signum)})


class FileSystem:
    """Files inside a sandbox (paths are absolute)."""

    def __init__(self, sandbox):
        self._sb = sandbox

    def _path(self, suffix=""):
        return "/v1/sandboxes/%s/files%s" % (self._sb.object_id, suffix)

    def read(self, path):
        """The whole file (the gateway streams a large one; a cut stream raises)."""
        return self._sb._c.call("GET", self._path(), {"path": path}, raw=True)

    def write(self, path, data, append=False):
        if isinstance(data, str):
            data = data.encode()
        query = {"path": path}
        if append:
            query["append"] = "1"
        self._sb._c.call("PUT", self._path(), query, body=bytes(data))

    def ls(self, path):
        return [e["name"] for e in self._sb._c.call("GET", self._path("/list"), {"path": path})["entries"]]

    def mkdir(self, path, parents=True):
        self._sb._c.call("POST", self._path("/mkdir"), {"path": path, "parents": "1" if parents else "0"})

    def rm(self, path, recursive=False):
        self._sb._c.call("DELETE", self._path(), {"path": path, "recursive": "1" if recursive else "0"})


class SandboxFile:
    """A file inside a sandbox, as Sandbox.open returns it (Modal's sb.open): read modes read the
    whole file at the first read; write and append modes send what was written at close."""

    def __init__(self, sandbox, path, mode):
        if mode not in ("r", "rb", "w", "wb", "a", "ab"):
            raise InvalidArgumentError("mode must be r, rb, w, wb, a or ab", "invalid_argument")
        self._sb, self._path, self._mode = sandbox, path, mode
        self._text = "b" not in mode
        self._data = None
        self._pos = 0
        self._out = [] if mode[0] in "wa" else None
        self.closed = False

    def read(self, n=-1):
        if self._out is not None:
            raise InvalidArgumentError("file not open for reading", "invalid_argument")
        if self._data is None:
            self._data = self._sb.files.read(self._path)
        end = len(self._data) if n is None or n < 0 else min(len(self._data), self._pos + n)
        chunk, self._pos = self._data[self._pos:end], end
        return chunk.decode() if self._text else chunk

    def write(self, data):
        if self._out is None:
            raise InvalidArgumentError("file not open for writing", "invalid_argument")
        self._out.append(data.encode() if isinstance(data, str) else bytes(data))
        return len(data)

    def close(self):
        if self.closed:
            return
        self.closed = True
        if self._out is not None:
            self._sb.files.write(self._path, b"".join(self._out), append=self._mode[0] == "a")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Sandbox:
    """A corral sandbox (Modal's Sandbox)."""

    def __init__(self, info, client=None):
        self._c = client or _client()
        self._info = info
        self.object_id = info["id"]
        self.files = FileSystem(self)

    @classmethod
    def create(cls, *entrypoint, timeout=None, idle_timeout=None, cpu=None, memory=None, tags=None,
               name=None, env=None, workdir=None, client=None):
        body = {}
        for key, value in (("timeout", timeout), ("idle_timeout", idle_timeout), ("cpu", cpu),
                           ("memory", memory), ("tags", tags), ("name", name), ("env", env),
                           ("workdir", workdir)):
            if value is not None:
                body[key] = value
        if entrypoint:
            body["entrypoint"] = list(entrypoint)
        c = client or _client()
        return cls(c.call("POST", "/v1/sandboxes", body=body), c)

    @classmethod
    def from_id(cls, sandbox_id, client=None):
        c = client or _client()
        return cls(c.call("GET", "/v1/sandboxes/" + urllib.parse.quote(sandbox_id, safe="")), c)

    @classmethod
    def list(cls, tags=None, name=None, client=None):
        c = client or _client()
        query = {}
        if tags:
            query["tag"] = ["%s:%s" % kv for kv in tags.items()]
        if name:
            query["name"] = name
        return [cls(info, c) for info in c.call("GET", "/v1/sandboxes", query)["sandboxes"]]

    def _path(self, suffix=""):
        return "/v1/sandboxes/%s%s" % (self.object_id, suffix)

    def refresh(self):
        self._info = self._c.call("GET", self._path())
        return self._info

    @property
    def returncode(self):
        return self.refresh().get("returncode")

    def poll(self):
        return self.returncode

    def wait(self, timeout=600):
        try:
            self._info = self._c.call("GET", self._path("/wait"), {"timeout": str(timeout)},
                                      timeout=timeout + 30)
        except TimeoutError:
            raise
        return self._info.get("returncode")

    def terminate(self, wait=False):
        self._info = self._c.call("POST", self._path("/terminate"), {"wait": "1"} if wait else None)
        return self._info.get("returncode")

    def get_tags(self):
        return dict(self.refresh().get("tags", {}))

    def set_tags(self, tags):
        self._info = self._c.call("PUT", self._path("/tags"), body={"tags": dict(tags)})

    def exec(self, *args, env=None, workdir=None, timeout=None, pty=False, text=True, exec_id=None):
        body = {"args": list(args), "pty": bool(pty)}
        if env:
            body["env"] = env
        if workdir:
            body["workdir"] = workdir
        if timeout is not None:
            body["timeout"] = timeout
        if exec_id:
            body["exec_id"] = exec_id
        reply = self._c.call("POST", self._path("/exec"), body=body)
        return ContainerProcess(self, reply["exec_id"], text=text)

    def open(self, path, mode="r"):
        """A file inside the sandbox (SandboxFile)."""
        return SandboxFile(self, path, mode)

    def __repr__(self):
        return "Sandbox(%s)" % self.object_id
