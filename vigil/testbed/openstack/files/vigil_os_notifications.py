"""Read Nova's versioned notifications off the stack's vhost; one JSON line per notification.

``python vigil_os_notifications.py AMQP_URL QUEUE [--wait SECONDS] [--max N]
[--until EVENT_TYPE [--match TEXT]]`` takes what is queued (and what arrives
for ``--wait`` seconds more, or until a notification of EVENT_TYPE whose
JSON contains TEXT) with plain
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
    parser.add_argument("--until", default=None, help="stop after a notification of this event type")
    parser.add_argument("--match", default="", help="... whose JSON contains this text")
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
            line = json.dumps(out)
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
            seen += 1
            if args.until is not None and out["event_type"] == args.until and args.match in line:
                return 0
    return 0 if args.until is None else 3  # 3: the awaited notification did not come


if __name__ == "__main__":
    sys.exit(main())
