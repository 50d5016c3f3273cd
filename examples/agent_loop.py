"""An agent loop: write a program, run it in a sandbox, read its output and exit status, and try
again until it passes. The "model" is a deterministic stand-in for an LLM (no network): it
drafts a first version, then revises the last version by reading how it failed, using a few
rules a human would apply (a NameError names a misspelt name; a timeout on a recursive
function asks for memoisation).

    CORRAL_URL=http://127.0.0.1:8080 CORRAL_TOKEN=... python3 examples/agent_loop.py
    CORRAL_URL=... CORRAL_TOKEN=... python3 examples/agent_loop.py --n 50 --json

The task: a program that prints fib(n) (default n=40) and checks itself, fib(90) included.
The first draft has a misspelt name (NameError, exit 1); the fixed draft is naive recursion,
which cannot reach fib(90) before the per-run timeout (status "timeout"); memoised, it passes.
--json prints one JSON object per attempt ({"attempt", "status", "returncode", "stdout",
"stderr", "diagnosis"}) and then {"succeeded", "attempts", "answer"}. Exit status 0 when an
attempt passed. The client is taken from ../clients/python beside this file.
"""

import argparse
import difflib
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python"))

import corral  # noqa: E402

FIRST_DRAFT = '''import sys


def fib(n):
    if n < 2:
        return n
    return fibb(n - 1) + fib(n - 2)


# Self-checks: small values, then a large one.
for k, want in [(0, 0), (1, 1), (2, 1), (10, 55), (20, 6765), (90, 2880067194370816120)]:
    got = fib(k)
    assert got == want, "fib(%d) = %d, expected %d" % (k, got, want)

n = int(sys.argv[1])
print("fib(%d) = %d" % (n, fib(n)))
'''


class RuleBasedModel:
    """Stands in for an LLM: propose() returns the next program given the previous attempt's
    code and what running it showed, or None when it has no idea left."""

    def propose(self, last_code=None, result=None):
        if last_code is None:
            return FIRST_DRAFT, "first draft"
        if result["status"] == "exited" and "NameError" in result["stderr"]:
            m = re.search(r"NameError: name '(\w+)' is not defined", result["stderr"])
            if m:
                defined = set(re.findall(r"^\s*def (\w+)", last_code, re.M))
                defined |= set(re.findall(r"^\s*(\w+)\s*=", last_code, re.M))
                close = difflib.get_close_matches(m.group(1), sorted(defined), n=1)
                if close:
                    fixed = re.sub(r"\b%s\b" % re.escape(m.group(1)), close[0], last_code)
                    return fixed, "NameError: %r looks like a typo of %r" % (m.group(1), close[0])
        if result["status"] == "timeout" and "lru_cache" not in last_code:
            m = re.search(r"^def (\w+)\(", last_code, re.M)
            if m:
                fixed = last_code.replace(
                    m.group(0), "@functools.lru_cache(maxsize=None)\n" + m.group(0), 1)
                fixed = "import functools\n" + fixed
                return fixed, "timed out in %s: memoise it" % m.group(1)
        return None, "no rule for status %s (return code %s)" % (result["status"], result["returncode"])


def run_program(sb, code, args, timeout):
    """Writes `code` into the sandbox and runs it; returns status, returncode, stdout, stderr."""
    sb.files.write("/tmp/solution.py", code)
    p = sb.exec("python3", "/tmp/solution.py", *args, timeout=timeout)
    stdout = p.stdout.read()
    stderr = p.stderr.read()
    returncode = p.wait()
    return {"status": p.status, "returncode": returncode, "stdout": stdout, "stderr": stderr}


def solve(sb, n, model, max_attempts=5, timeout=5, report=print):
    """The loop. Returns (succeeded, attempts, the passing program's stdout or None)."""
    code, result = None, None
    for attempt in range(1, max_attempts + 1):
        code, diagnosis = model.propose(code, result)
        if code is None:
            report({"attempt": attempt, "gave_up": diagnosis})
            return False, attempt - 1, None
        result = run_program(sb, code, [str(n)], timeout)
        report(dict(result, attempt=attempt, diagnosis=diagnosis))
        if result["status"] == "exited" and result["returncode"] == 0:
            return True, attempt, result["stdout"]
    return False, max_attempts, None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=40, help="which Fibonacci number (0..90)")
    parser.add_argument("--timeout", type=float, default=5, help="seconds per run")
    parser.add_argument("--json", action="store_true", help="JSON lines instead of prose")
    args = parser.parse_args(argv)

    def report(event):
        if args.json:
            print(json.dumps(event), flush=True)
        elif "gave_up" in event:
            print("attempt %d: the model gives up: %s" % (event["attempt"], event["gave_up"]))
        else:
            print("attempt %d (%s): %s, return code %s" % (event["attempt"], event["diagnosis"],
                                                          event["status"], event["returncode"]))
            tail = (event["stdout"] + event["stderr"]).strip().splitlines()[-1:]
            if tail:
                print("    " + tail[0])
        sys.stdout.flush()

    sb = corral.Sandbox.create(timeout=600, memory=512, tags={"example": "agent_loop"})
    try:
        ok, attempts, answer = solve(sb, args.n, RuleBasedModel(), timeout=args.timeout,
                                     report=report)
    finally:
        sb.terminate()
    if args.json:
        print(json.dumps({"succeeded": ok, "attempts": attempts, "answer": answer}), flush=True)
    else:
        print("succeeded on attempt %d: %s" % (attempts, answer.strip()) if ok
              else "failed after %d attempts" % attempts)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
