"""``python -m beatra.sandbox --port PORT [--host 127.0.0.1]``: serve the sandbox with gevent."""

from gevent import monkey

monkey.patch_all()  # before anything imports socket/ssl/threading (Flask, requests)

import argparse  # noqa: E402
import contextlib  # noqa: E402
import sys  # noqa: E402

from gevent.pywsgi import WSGIServer  # noqa: E402

from beatra.sandbox.app import create_sandbox_app  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m beatra.sandbox",
                                     description="Offline fake upstream providers.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--access-log", action="store_true",
                        help="log every request (off by default: load tests are noisy)")
    args = parser.parse_args(argv)
    server = WSGIServer((args.host, args.port), create_sandbox_app(),
                        log=sys.stderr if args.access_log else None, backlog=2048)
    server.init_socket()  # bind now so the printed port is real (also for --port 0)
    host, port = server.socket.getsockname()[:2]
    print(f"sandbox listening on http://{host}:{port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
