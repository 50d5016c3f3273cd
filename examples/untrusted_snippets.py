"""Safe execution of untrusted Node.js, Ruby and PHP snippets: each snippet runs in a fresh
sandbox of its own (gVisor; no network; a memory limit) with a wall-clock timeout, so a hostile
snippet ends with a status (an infinite loop: "timeout"; a memory hog: "oom_killed") instead of
hanging its caller or its host.

    CORRAL_URL=http://127.0.0.1:8080 CORRAL_TOKEN=... python3 examples/untrusted_snippets.py
    CORRAL_URL=... CORRAL_TOKEN=... python3 examples/untrusted_snippets.py \\
        --snippet node 'console.log(2 ** 10)' --snippet ruby 'puts 7 * 6' --timeout 5

Without --snippet, a demo runs: one useful snippet per language, then one infinite loop per
language, then a memory hog that the sandbox's memory limit stops (status "oom_killed"). --json prints one JSON object per snippet ({"language", "code", "status",
"returncode", "stdout", "stderr", "seconds"}). The interpreters come from the host's Debian
packages (nodejs, ruby, php-cli; deploy/install-deps.sh), which the default image shares
read-only. The client is taken from ../clients/python beside this file.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python"))

import corral  # noqa: E402

# language -> (file the snippet is written to inside the sandbox, the command that runs it)
LANGUAGES = {
    "node": ("/tmp/snippet.js", ["node", "/tmp/snippet.js"]),
    "ruby": ("/tmp/snippet.rb", ["ruby", "/tmp/snippet.rb"]),
    "php": ("/tmp/snippet.php", ["php", "/tmp/snippet.php"]),
}


class SnippetResult:
    """How a snippet ended: status is corral's outcome ("exited", "timeout", "oom_killed",
    "signaled", "output_limit", ...), returncode the process's (124 on a timeout)."""

    def __init__(self, language, code, status, returncode, stdout, stderr, seconds):
        self.language = language
        self.code = code
        self.status = status
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.seconds = seconds

    def as_dict(self):
        return dict(self.__dict__)


def run_snippet(language, code, timeout=10, memory=256):
    """Runs `code` with the interpreter of `language` in a new sandbox (memory MiB, one CPU),
    killed after `timeout` seconds. The sandbox is terminated before this returns."""
    if language not in LANGUAGES:
        raise ValueError("unknown language %r (known: %s)" % (language, ", ".join(LANGUAGES)))
    path, argv = LANGUAGES[language]
    started = time.monotonic()
    # The sandbox's own lifetime is a backstop well past the snippet's timeout.
    sb = corral.Sandbox.create(timeout=timeout + 120, memory=memory, cpu=1,
                               tags={"example": "untrusted_snippets", "language": language})
    try:
        sb.files.write(path, code)
        p = sb.exec(*argv, timeout=timeout)
        stdout = p.stdout.read()
        stderr = p.stderr.read()
        returncode = p.wait()
        return SnippetResult(language, code, p.status, returncode, stdout, stderr,
                             round(time.monotonic() - started, 3))
    finally:
        sb.terminate()


DEMO = [
    ("node", "const primes = [];\n"
             "for (let n = 2; primes.length < 10; n++)\n"
             "  if (primes.every(p => n % p !== 0)) primes.push(n);\n"
             "console.log(primes.join(' '));"),
    ("ruby", "words = %w[sandbox gvisor corral nats]\n"
             "puts words.map(&:upcase).sort.join(',')"),
    ("php", "<?php\n$squares = array_map(fn($n) => $n * $n, range(1, 5));\n"
            "echo array_sum($squares), \"\\n\";"),
    # Hostile: each would run forever; the per-exec timeout ends them (status "timeout").
    ("node", "while (true) {}"),
    ("ruby", "loop { }"),
    ("php", "<?php\nwhile (true) { }"),
    # Hostile: allocates without end; the sandbox's memory limit ends it (status "oom_killed").
    ("node", "const hoard = [];\nfor (;;) hoard.push(Buffer.alloc(10000000, 1));"),
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--snippet", nargs=2, action="append", metavar=("LANGUAGE", "CODE"),
                        help="a snippet to run (repeatable); default: the demo")
    parser.add_argument("--timeout", type=float, default=5, help="seconds per snippet")
    parser.add_argument("--memory", type=int, default=256, help="MiB per sandbox")
    parser.add_argument("--json", action="store_true", help="one JSON object per snippet")
    args = parser.parse_args(argv)
    for language, _ in args.snippet or []:
        if language not in LANGUAGES:
            parser.error("unknown language %r (known: %s)" % (language, ", ".join(LANGUAGES)))

    for language, code in args.snippet or DEMO:
        r = run_snippet(language, code, timeout=args.timeout, memory=args.memory)
        if args.json:
            print(json.dumps(r.as_dict()), flush=True)
            continue
        print("%-4s %s(%s) in %.2fs: %s" % (r.language, r.status, r.returncode, r.seconds,
                                          code.replace("\n", " ")[:60]))
        for name, text in (("stdout", r.stdout), ("stderr", r.stderr)):
            for line in text.splitlines()[:10]:
                print("     %s | %s" % (name, line))
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
