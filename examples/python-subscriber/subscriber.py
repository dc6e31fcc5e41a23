#!/usr/bin/env python3
"""Prints hookstream events as they arrive, and goes on where it stopped.

Subscribes to a hookstream server with an optional CEL filter, prints each
event as one JSON line built from the typed fields of hookstream.v1.Event,
and after each event writes its cursor to a file. Started again, it resumes
right after that cursor: no event is missed and none is printed twice
(unless the process dies between printing an event and storing its cursor;
a real consumer makes its work idempotent for that case, e.g. by event id).
A broken stream (server restart) is reopened by hookstream_client.

    export HOOKSTREAM_ADDR=localhost:9090 HOOKSTREAM_TOKEN=...
    python3 examples/python-subscriber/subscriber.py \\
        --filter 'event.vendor == hookstream.v1.Vendor.VENDOR_PIPEDRIVE'

Stops on Ctrl-C or SIGTERM with exit code 0; exits 1 when the server
refuses the stream (bad filter or token).
"""

import argparse
import json
import os
import signal
import sys

try:
    import hookstream_client
except ImportError:
    # Not installed (pip install ./clients/python): use the checkout this
    # example lives in.
    _root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    sys.path[:0] = [os.path.join(_root, "gen", "python"), os.path.join(_root, "clients", "python", "src")]
    import hookstream_client

import grpc

from hookstream.v1 import event_pb2


def payload_summary(event: event_pb2.Event) -> dict:
    """A few fields of the typed vendor payload (the `payload` oneof)."""
    kind = event.WhichOneof("payload")
    if kind == "closer":
        c = event.closer
        return {"kind": kind, "event_type": c.event_type, "customer_id": c.customer.id}
    if kind == "pipedrive_v1":
        m = event.pipedrive_v1.meta
        return {"kind": kind, "action": m.action, "object": m.object, "id": m.id}
    if kind == "pipedrive_v2":
        m = event.pipedrive_v2.meta
        return {"kind": kind, "action": m.action, "entity": m.entity, "entity_id": m.entity_id}
    if kind == "clinchpad":
        w = event.clinchpad
        return {"kind": kind, "activity_type": w.activity.type, "lead_id": w.lead.id, "stage": w.lead.stage.name}
    return {"kind": kind or ""}


def describe(delivery) -> dict:
    e = delivery.event
    return {
        "cursor": delivery.cursor,
        "id": e.id,
        "source": e.source,
        "vendor": event_pb2.Vendor.Name(e.vendor),
        "type": e.type,
        "vendor_type": e.vendor_type,
        "occurred_at": e.occurred_at.ToJsonString(),
        "subject": {"kind": e.subject.kind, "id": e.subject.id, "name": e.subject.name},
        "contact_email": e.contact.email,
        "changes": [c.field for c in e.changes],
        "payload": payload_summary(e),
    }


def read_cursor(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except FileNotFoundError:
        return ""


def write_cursor(path: str, cursor: str) -> None:
    # Write a new file and rename it over the old one, so a crash leaves
    # either the old cursor or the new one, never half of one.
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(cursor + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--addr", help="gRPC address of the server (env HOOKSTREAM_ADDR; default %s)" % hookstream_client.DEFAULT_ADDR)
    p.add_argument("--token", help="API token with the read scope (env HOOKSTREAM_TOKEN)")
    p.add_argument("--filter", default="", help="CEL filter over `event`, e.g. 'event.type.startsWith(\"deal.\")'")
    p.add_argument("--cursor-file", default="hookstream.cursor", help="where the last cursor is kept (default %(default)s)")
    p.add_argument("--from", dest="start", choices=["now", "beginning"], default="now",
                   help="where to start when the cursor file is empty or missing (default %(default)s)")
    p.add_argument("--tls", action="store_true", help="use TLS (the server's grpc.tls)")
    args = p.parse_args()

    # SIGTERM ends the process like Ctrl-C: the stream is cancelled cleanly.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    cursor = read_cursor(args.cursor_file)
    where = "after cursor " + cursor if cursor else "from " + args.start
    print("subscribing %s%s" % (where, ", filter " + args.filter if args.filter else ""), file=sys.stderr, flush=True)

    def on_reconnect(err, pause):
        detail = err.details() if isinstance(err, grpc.RpcError) else str(err)
        print("stream broken (%s); reconnecting in %.2fs" % (detail, pause), file=sys.stderr, flush=True)

    try:
        with hookstream_client.connect(args.addr, args.token, tls=args.tls) as client:
            for delivery in client.subscribe(args.filter, after_cursor=cursor or None, start=args.start,
                                             on_reconnect=on_reconnect):
                print(json.dumps(describe(delivery)), flush=True)
                write_cursor(args.cursor_file, delivery.cursor)
    except grpc.RpcError as e:
        info = hookstream_client.error_info(e)  # the stable reason and its values
        reason = " [%s %s]" % (info.reason, json.dumps(info.metadata, sort_keys=True)) if info else ""
        print("hookstream refused the stream: %s: %s%s" % (e.code().name, e.details(), reason), file=sys.stderr)
        if info and info.reason == "CURSOR_PAST_END":
            print("start again from the log's last cursor %s (write it to %s)" % (info.metadata.get("last_cursor"), args.cursor_file),
                  file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
