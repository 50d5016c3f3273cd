"""An output stream survives gateway restarts (run by examples_test's PythonStreamResume, which
sets CORRAL_URL, CORRAL_TOKEN and PYTHONPATH).

A process in the sandbox writes numbered lines over a few seconds, in three parts; between two
parts it waits for a file (/tmp/go-1, /tmp/go-2) that only the C++ side creates, after it has
killed the gateway (SIGKILL) and started a new one on the same port. So each kill lands while
this reader is blocked on a live stream with output still to come. Protocol: this test prints
"RESTART-GATEWAY <k> <sandbox id>" on stdout once it holds everything before gate k.

The reader must end with every line exactly once, in order, and must have reconnected.
"""

import os
import sys
import unittest

import corral

GATES = [50, 120]  # lines written before gate 1 and before gate 2
TOTAL = 200

PROGRAM = r'''
import os, sys, time
gates, total = [%s], %d
for i in range(total):
    if i in gates:
        go = "/tmp/go-%%d" %% (gates.index(i) + 1)
        while not os.path.exists(go):
            time.sleep(0.05)
    sys.stdout.write("line %%04d %%s\n" %% (i, "." * (i %% 37)))
    sys.stdout.flush()
    time.sleep(0.01)
''' % (", ".join(map(str, GATES)), TOTAL)


def expected_line(i):
    return "line %04d %s\n" % (i, "." * (i % 37))


class CountingClient(corral._Client):
    """Counts the requests that open an output stream: one per (re)connection."""

    def __init__(self):
        super().__init__()
        self.output_opens = 0

    def open(self, method, path, query=None, body=None, timeout=None):
        if path.endswith("/output"):
            self.output_opens += 1
        return super().open(method, path, query, body, timeout)


class StreamResumeTest(unittest.TestCase):
    def test_stream_resumes_across_gateway_restarts(self):
        client = CountingClient()
        sb = corral.Sandbox.create(timeout=300, client=client)
        try:
            p = sb.exec("python3", "-c", PROGRAM)
            lines = []
            it = iter(p.stdout)
            for k, gate in enumerate(GATES, 1):
                while len(lines) < gate:
                    lines.append(next(it))
                print("RESTART-GATEWAY %d %s" % (k, sb.object_id), flush=True)
            lines.extend(it)  # to the end of the stream (the exit frame)

            self.assertEqual(len(lines), TOTAL, "a gap or a duplicate: %r" % lines[:5])
            for i, line in enumerate(lines):
                self.assertEqual(line, expected_line(i), "line %d" % i)
            self.assertEqual(p.returncode, 0)
            self.assertEqual(p.status, "exited")
            # One stream at first, and at least one more after each restart.
            print("output streams opened: %d" % client.output_opens, file=sys.stderr)
            self.assertGreaterEqual(client.output_opens, 1 + len(GATES))

            # The whole output again, from offset 0 through the new gateway, byte for byte.
            again = corral.ContainerProcess(sb, p.object_id).stdout.read()
            self.assertEqual(again, "".join(expected_line(i) for i in range(TOTAL)))
        finally:
            sb.terminate()


if __name__ == "__main__":
    assert os.environ.get("CORRAL_URL") and os.environ.get("CORRAL_TOKEN"), "set CORRAL_URL/TOKEN"
    unittest.main(argv=[sys.argv[0], "-v"])
