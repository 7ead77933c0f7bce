"""Stand-in for Jotform's upload host: serves the X-ray pool over plain HTTP on loopback.

Jotform's upload URLs look like ``/uploads/<account>/<formID>/<submissionID>/<file name>``; this
server answers any path by its last component (the pool file of that name), with Content-Length,
from a thread per connection, as a file host would. Run as a separate process
(``python -m testkit.fileserver PORT FOLDER``) so that it does not share the load generator's
interpreter lock.
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def serve(port: int, folder: Path) -> None:
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            body = files.get(self.path.rsplit("/", 1)[-1].split("?", 1)[0])
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/png" if self.path.endswith(".png") else "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"file host ready on {port} ({len(files)} files)", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    serve(int(sys.argv[1]), Path(sys.argv[2]))
