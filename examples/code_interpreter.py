"""A stateful code interpreter: one sandbox, one persistent Python process, cells run one after
another in one shared namespace (like Modal's simple_code_interpreter example).

    CORRAL_URL=http://127.0.0.1:8080 CORRAL_TOKEN=... python3 examples/code_interpreter.py
    CORRAL_URL=... CORRAL_TOKEN=... python3 examples/code_interpreter.py 'x = 6 * 7' 'print(x)'

With arguments, each argument is a cell; without, a short demo runs. --json prints one JSON
object per cell ({"cell", "code", "stdout", "stderr", "error"}) instead of the notebook view.
The client is taken from ../clients/python beside this file.

How it works: the driver below is started once with sb.exec and reads cells from its stdin, each
framed as a header line "<code bytes> <timeout seconds>\\n" followed by exactly that many bytes
of UTF-8 code. It runs each cell in one globals dict with stdout and stderr captured (and, like
a notebook, shows the value of a final expression), then answers with one line: a marker that
is random per session, then JSON {"stdout", "stderr", "error"}. Output written straight to
file descriptor 1 (a child process, say) arrives as ordinary lines before the marker and is
counted as the cell's stdout. A cell past its timeout is interrupted (SIGALRM) and reported as
an error; the interpreter and its variables survive it, as they survive any exception.
"""

import argparse
import json
import os
import secrets
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python"))

import corral  # noqa: E402

DRIVER = r'''
import ast, contextlib, io, json, signal, sys, traceback

marker = sys.argv[1]
namespace = {"__name__": "__main__", "__builtins__": __builtins__}
source = sys.stdin.buffer


class CellTimeout(Exception):
    pass


def on_alarm(signum, frame):
    raise CellTimeout("the cell ran past its timeout")


signal.signal(signal.SIGALRM, on_alarm)


def run(code):
    tree = ast.parse(code, "<cell>", "exec")
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    exec(compile(tree, "<cell>", "exec"), namespace)
    if last is not None:
        value = eval(compile(last, "<cell>", "eval"), namespace)
        if value is not None:
            print(repr(value))


while True:
    header = source.readline()
    if not header:
        break
    size, timeout = header.split()
    code = source.read(int(size)).decode("utf-8", errors="replace")
    out, err, error = io.StringIO(), io.StringIO(), None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            signal.setitimer(signal.ITIMER_REAL, float(timeout))
            try:
                run(code)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except BaseException as e:  # SystemExit too: a cell never ends the interpreter
            tb = e.__traceback__
            while tb is not None and tb.tb_frame.f_code.co_filename != "<cell>":
                tb = tb.tb_next
            error = "".join(traceback.format_exception(type(e), e, tb))
    sys.stdout.write(marker + json.dumps({"stdout": out.getvalue(), "stderr": err.getvalue(),
                                          "error": error}) + "\n")
    sys.stdout.flush()
'''


class CellResult:
    """What one cell printed, and its traceback when it raised (else None)."""

    def __init__(self, stdout, stderr, error):
        self.stdout = stdout
        self.stderr = stderr
        self.error = error

    @property
    def ok(self):
        return self.error is None


class CodeInterpreter:
    """A persistent Python interpreter inside a sandbox: run() executes one cell and returns
    its CellResult; variables, imports and functions stay for the next cells."""

    def __init__(self, sandbox):
        self._marker = "\x1ecorral-cell-end-%s\x1e" % secrets.token_hex(16)
        self._proc = sandbox.exec("python3", "-u", "-c", DRIVER, self._marker)
        self._lines = iter(self._proc.stdout)

    def run(self, code, timeout=30):
        data = code.encode()
        self._proc.stdin.write(b"%d %g\n" % (len(data), timeout) + data)
        stray = []
        for line in self._lines:
            if line.startswith(self._marker):
                result = json.loads(line[len(self._marker):])
                return CellResult("".join(stray) + result["stdout"], result["stderr"], result["error"])
            stray.append(line)
        raise RuntimeError("the interpreter ended (return code %s)" % self._proc.wait())

    def close(self):
        """Ends the driver (EOF on its stdin); returns its return code."""
        self._proc.stdin.write_eof()
        return self._proc.wait(timeout=30)


DEMO_CELLS = [
    "import math\nradius = 2.5\narea = math.pi * radius ** 2\nprint(f'area = {area:.3f}')",
    "area * 2",
    "squares = [n * n for n in range(10)]\nsum(squares)",
    "1 / 0",
    "print('after the error, squares still has', len(squares), 'items')",
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cells", nargs="*", help="cells to run, in order (default: a demo)")
    parser.add_argument("--timeout", type=float, default=30, help="seconds per cell")
    parser.add_argument("--json", action="store_true", help="one JSON object per cell")
    args = parser.parse_args(argv)

    sb = corral.Sandbox.create(timeout=600, memory=512)
    try:
        interpreter = CodeInterpreter(sb)
        for i, code in enumerate(args.cells or DEMO_CELLS, 1):
            r = interpreter.run(code, timeout=args.timeout)
            if args.json:
                print(json.dumps({"cell": i, "code": code, "stdout": r.stdout, "stderr": r.stderr,
                                  "error": r.error}), flush=True)
                continue
            print("In [%d]: %s" % (i, code.replace("\n", "\n" + " " * (len("In [%d]: " % i)))))
            if r.stdout:
                print(r.stdout, end="" if r.stdout.endswith("\n") else "\n")
            if r.stderr:
                print("[stderr] " + r.stderr, end="" if r.stderr.endswith("\n") else "\n")
            if r.error:
                print(r.error.rstrip().splitlines()[-1])
            print(flush=True)
        return interpreter.close()
    finally:
        sb.terminate()


if __name__ == "__main__":
    sys.exit(main())
