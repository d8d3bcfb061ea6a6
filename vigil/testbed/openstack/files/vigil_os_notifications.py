"""Read Nova's versioned notifications off the stack's vhost; one JSON line per notification.

``python vigil_os_notifications.py AMQP_URL QUEUE [--wait SECONDS] [--max N]``
takes what is queued (and what arrives for ``--wait`` seconds more) with plain
``basic_get``, unwraps the oslo envelope (``{"oslo.version": "2.0",
"oslo.message": "<json>"}``) and prints ``{"event_type", "publisher_id",
"timestamp", "payload"}`` per line. It runs in the stack's virtual
environment, whose kombu (an oslo.messaging dependency) is the AMQP client,
so Vigil's own environment needs none for the tests.
"""

import argparse
import json
import sys
import time

import kombu  # type: ignore[import-not-found,unused-ignore]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("queue")
    parser.add_argument("--wait", type=float, default=0.0)
    parser.add_argument("--max", type=int, default=100_000)
    args = parser.parse_args()
    seen = 0
    deadline = time.monotonic() + args.wait
    with kombu.Connection(args.url, connect_timeout=5) as conn:
        channel = conn.channel()
        while seen < args.max:
            message = channel.basic_get(args.queue, no_ack=True)
            if message is None:
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.1)
                continue
            body = json.loads(message.body)
            inner = json.loads(body["oslo.message"]) if "oslo.message" in body else body
            out = {k: inner.get(k) for k in ("event_type", "publisher_id", "timestamp", "payload")}
            sys.stdout.write(json.dumps(out) + "\n")
            sys.stdout.flush()
            seen += 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
