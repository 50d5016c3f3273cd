"""StreamReader's resume logic against a scripted fake gateway (no corral needed; run by
examples_test's PythonStreamReader.ResumesFromItsOffset).

Each output request the fake answers is one step of a script: frames that overlap what was
already delivered, a connection cut in the middle of a frame, a stream that ends without an exit
frame, a frame past the reader's offset (a gap). The reader must deliver every byte once, in
order, and ask each time from exactly the offset it holds.
"""

import base64
import http.server
import json
import sys
import threading
import unittest
import urllib.parse

import corral


def frame(offset, text):
    return json.dumps({"stream": "stdout", "offset": offset,
                       "data": base64.b64encode(text.encode()).decode()}) + "\n"


EXIT = json.dumps({"exit": {"status": "exited", "returncode": 0}}) + "\n"

# What the fake sends for the 1st, 2nd, ... output request: (body pieces, end cleanly?)
SCRIPT = [
    # Two frames, then a frame cut in its middle and the connection dropped.
    ([frame(0, "line 0\n"), frame(7, "line 1\n"), frame(14, "line 2\n")[:20]], False),
    # From offset 14: a frame that overlaps (7..21) what the reader has, then a clean end
    # without the exit frame (a gateway draining).
    ([frame(7, "line 1\nline 2\n")], True),
    # From offset 21: a frame past it (bytes 21..30 missing).
    ([frame(30, "line 9\n")], True),
    # From offset 21 again: the rest and the exit.
    ([frame(21, "line 3\n"), EXIT], True),
]


class FakeGateway(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    offsets = []  # the offset of every output request, in order

    def log_message(self, *args):
        pass

    def do_GET(self):
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        step = len(FakeGateway.offsets)
        FakeGateway.offsets.append(int(query["offset"][0]))
        pieces, clean = SCRIPT[min(step, len(SCRIPT) - 1)]
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for piece in pieces:
            data = piece.encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        if clean:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        self.close_connection = True


class StreamReaderTest(unittest.TestCase):
    def test_resumes_from_its_offset(self):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeGateway)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            client = corral._Client(url="http://127.0.0.1:%d" % server.server_port, token="t")
            sb = corral.Sandbox({"id": "sb-fake"}, client)
            p = corral.ContainerProcess(sb, "ex-fake")
            self.assertEqual(list(p.stdout), ["line 0\n", "line 1\n", "line 2\n", "line 3\n"])
            self.assertEqual(FakeGateway.offsets, [0, 14, 21, 21])
            self.assertEqual(p.returncode, 0)
            self.assertEqual(p.status, "exited")
        finally:
            server.shutdown()
            server.server_close()


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
