"""The Python client against a real gateway + executor (run by gateway_test's PythonClient,
which sets CORRAL_URL, CORRAL_TOKEN and PYTHONPATH). The issue's example, then errors."""

import hashlib
import os
import sys
import unittest

import corral


class ClientTest(unittest.TestCase):
    def test_issue_example(self):
        sb = corral.Sandbox.create(timeout=600, cpu=1, memory=512, tags={"run": "42"})
        try:
            p = sb.exec("python3", "-c", "print(input()[::-1])")
            p.stdin.write(b"hello\n")
            p.stdin.write_eof()
            self.assertEqual(p.stdout.read(), "olleh\n")
            self.assertEqual(p.wait(), 0)

            lines = list(sb.exec("sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.1; done").stdout)
            self.assertEqual(lines, ["1\n", "2\n", "3\n"])

            sb.files.write("/tmp/a.txt", b"x")
            self.assertEqual(sb.files.read("/tmp/a.txt"), b"x")
            self.assertIn("a.txt", sb.files.ls("/tmp"))

            self.assertEqual(corral.Sandbox.from_id(sb.object_id).object_id, sb.object_id)
            self.assertEqual([s.object_id for s in corral.Sandbox.list(tags={"run": "42"})],
                             [sb.object_id])

            q = sb.exec("sh", "-c", "echo out; echo err >&2; exit 7", text=False)
            self.assertEqual(q.stderr.read(), b"err\n")
            self.assertEqual(q.stdout.read(), b"out\n")
            self.assertEqual(q.wait(), 7)
            self.assertEqual(q.poll(), 7)
        finally:
            sb.terminate()
        self.assertEqual(corral.Sandbox.from_id(sb.object_id).wait(timeout=30), 137)

    def test_a_large_file_reads_whole(self):
        # Larger than one response of the gateway (8 MiB): streamed whole, never cut.
        sb = corral.Sandbox.create(timeout=300)
        try:
            size = 9 * 1024 * 1024 + 7
            p = sb.exec("sh", "-c", "head -c %d /dev/urandom > /tmp/big && sha256sum /tmp/big" % size)
            digest = p.stdout.read().split()[0]
            self.assertEqual(p.wait(), 0)
            with sb.open("/tmp/big", "rb") as f:
                data = f.read()
            self.assertEqual(len(data), size)
            self.assertEqual(hashlib.sha256(data).hexdigest(), digest)
            self.assertEqual(len(sb.files.read("/tmp/big")), size)
            with sb.open("/tmp/small.txt", "w") as f:
                f.write("hello ")
                f.write("there")
            self.assertEqual(sb.open("/tmp/small.txt").read(), "hello there")
        finally:
            sb.terminate()

    def test_timeouts_raise_typed_errors(self):
        sb = corral.Sandbox.create(timeout=120)
        try:
            p = sb.exec("sleep", "30")
            with self.assertRaises(corral.TimeoutError):
                p.wait(timeout=0.5)
            self.assertIsNone(p.poll())
            p.signal(9)
            self.assertEqual(p.wait(), 137)
        finally:
            sb.terminate()

    def test_typed_errors(self):
        with self.assertRaises(corral.NotFoundError):
            corral.Sandbox.from_id("sb-0000000000000000000000")
        with self.assertRaises(corral.InvalidArgumentError):
            corral.Sandbox.create(timeout="soon")
        bad = corral._Client(token="wrong")
        with self.assertRaises(corral.AuthError):
            corral.Sandbox.list(client=bad)


if __name__ == "__main__":
    assert os.environ.get("CORRAL_URL") and os.environ.get("CORRAL_TOKEN"), "set CORRAL_URL/TOKEN"
    unittest.main(argv=[sys.argv[0], "-v"])
