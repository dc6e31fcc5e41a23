"""Unit tests of hookstream_client against an in-process fake EventService.

Run from the repository root (test/system's TestPythonClientUnit does,
with the package installed in a virtualenv):

    PYTHONPATH=gen/python:clients/python/src /usr/bin/python3 -m unittest discover -s clients/python/tests -v
"""

import datetime
import os
import threading
import unittest
from concurrent import futures
from unittest import mock

import grpc

import hookstream_client
from hookstream.v1 import event_pb2, event_service_pb2, event_service_pb2_grpc


def delivery(cursor):
    return event_service_pb2.SubscribeResponse(
        delivery=event_service_pb2.EventDelivery(
            cursor=cursor,
            event=event_pb2.Event(id=cursor.rjust(32, "0"), source="s", vendor=event_pb2.VENDOR_CLOSER, type="a.b"),
        )
    )


def heartbeat():
    r = event_service_pb2.SubscribeResponse()
    r.heartbeat.time.GetCurrentTime()
    return r


class FakeEvents(event_service_pb2_grpc.EventServiceServicer):
    """Plays one script per Subscribe call: a list of responses, then an
    optional status to end with (None: the stream ends OK; "hang": it stays
    open until the client cancels)."""

    def __init__(self, scripts):
        self.scripts = list(scripts)
        self.requests = []
        self.metadata = []
        self.cancelled = threading.Event()

    def Subscribe(self, request, context):
        self.requests.append(request)
        self.metadata.append(dict(context.invocation_metadata()))
        responses, end = self.scripts.pop(0)
        if end == "hang":
            # Registered before the first yield: a client that cancels right
            # after its last message may end the call while this generator
            # is suspended in a yield, and it would never come back here.
            if not context.add_callback(self.cancelled.set):
                self.cancelled.set()
        for r in responses:
            yield r
        if end == "hang":
            while context.is_active():
                self.cancelled.wait(0.05)
            return
        if end is not None:
            context.abort(end, "scripted " + end.name)


class ClientTest(unittest.TestCase):
    def serve(self, *scripts):
        self.fake = FakeEvents(scripts)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        event_service_pb2_grpc.add_EventServiceServicer_to_server(self.fake, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self.addCleanup(server.stop, None)
        client = hookstream_client.connect("127.0.0.1:%d" % port, "tok-123")
        self.addCleanup(client.close)
        return client

    def test_token_heartbeats_and_first_request(self):
        client = self.serve(([heartbeat(), delivery("1"), heartbeat(), delivery("2")], None))
        got = [d.cursor for d in client.subscribe("event.type == 'a.b'", start="beginning", include_raw=True, reconnect=False)]
        self.assertEqual(got, ["1", "2"])
        self.assertEqual(self.fake.metadata[0].get("authorization"), "Bearer tok-123")
        req = self.fake.requests[0]
        self.assertEqual(req.filter, "event.type == 'a.b'")
        self.assertTrue(req.include_raw)
        self.assertEqual(req.WhichOneof("start"), "position")
        self.assertEqual(req.position, event_service_pb2.START_POSITION_BEGINNING)

    def test_reconnects_after_last_cursor(self):
        client = self.serve(
            ([delivery("1"), delivery("2")], grpc.StatusCode.UNAVAILABLE),
            ([], None),  # a stream the server ends cleanly is reopened too
            ([delivery("3")], "hang"),
        )
        reconnects = []
        stream = client.subscribe("f", after_cursor="0", include_raw=True, on_reconnect=lambda e, pause: reconnects.append((e, pause)))
        got = [next(stream).cursor for _ in range(3)]
        stream.close()
        self.assertEqual(got, ["1", "2", "3"])
        self.assertEqual([r.after_cursor for r in self.fake.requests], ["0", "2", "2"])
        self.assertTrue(all(r.filter == "f" and r.include_raw for r in self.fake.requests))
        self.assertEqual(reconnects[0][0].code(), grpc.StatusCode.UNAVAILABLE)
        self.assertIsInstance(reconnects[1][0], ConnectionError)
        self.assertEqual([p for _, p in reconnects], [0.25, 0.5])
        self.assertTrue(self.fake.cancelled.wait(5), "closing the generator did not cancel the call")

    def test_now_is_reopened_at_first_open_time(self):
        client = self.serve(([], grpc.StatusCode.UNAVAILABLE), ([delivery("7")], None))
        before = datetime.datetime.now(datetime.timezone.utc)
        stream = client.subscribe(reconnect=True, on_reconnect=lambda e, p: None)
        self.assertEqual(next(stream).cursor, "7")
        stream.close()
        first, second = self.fake.requests
        self.assertEqual(first.position, event_service_pb2.START_POSITION_NOW)
        self.assertEqual(second.WhichOneof("start"), "start_time")
        opened = second.start_time.ToDatetime().replace(tzinfo=datetime.timezone.utc)
        self.assertLess(abs((opened - before).total_seconds()), 2)

    def test_fatal_codes_are_raised(self):
        for code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED,
                     grpc.StatusCode.OUT_OF_RANGE):
            with self.subTest(code=code):
                client = self.serve(([delivery("1")], code))
                called = []
                stream = client.subscribe(on_reconnect=lambda e, p: called.append(e))
                self.assertEqual(next(stream).cursor, "1")
                with self.assertRaises(grpc.RpcError) as cm:
                    next(stream)
                self.assertEqual(cm.exception.code(), code)
                self.assertEqual(called, [])
                self.assertEqual(len(self.fake.requests), 1)

    def test_without_reconnect_errors_are_raised(self):
        client = self.serve(([], grpc.StatusCode.UNAVAILABLE))
        with self.assertRaises(grpc.RpcError) as cm:
            list(client.subscribe(reconnect=False))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)

    def test_address_and_token_from_environment(self):
        self.fake = FakeEvents([([delivery("1")], None)])
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        event_service_pb2_grpc.add_EventServiceServicer_to_server(self.fake, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self.addCleanup(server.stop, None)
        with mock.patch.dict(os.environ, {"HOOKSTREAM_ADDR": "127.0.0.1:%d" % port, "HOOKSTREAM_TOKEN": "env-tok"}):
            with hookstream_client.connect() as client:
                self.assertEqual([d.cursor for d in client.subscribe(reconnect=False)], ["1"])
        self.assertEqual(self.fake.metadata[0].get("authorization"), "Bearer env-tok")

    def test_no_token_sends_no_header(self):
        self.fake = FakeEvents([([], None)])
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        event_service_pb2_grpc.add_EventServiceServicer_to_server(self.fake, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self.addCleanup(server.stop, None)
        with mock.patch.dict(os.environ, {"HOOKSTREAM_TOKEN": ""}):
            with hookstream_client.connect("127.0.0.1:%d" % port) as client:
                self.assertEqual(list(client.subscribe(reconnect=False)), [])
        self.assertNotIn("authorization", self.fake.metadata[0])

    def test_bad_start(self):
        client = hookstream_client.Client(grpc.insecure_channel("127.0.0.1:1"))
        self.addCleanup(client.close)
        with self.assertRaises(ValueError):
            next(client.subscribe(start="yesterday"))
        with self.assertRaises(ValueError):
            next(client.subscribe(start=datetime.datetime(2026, 1, 1)))

    def test_vendor_name(self):
        self.assertEqual(hookstream_client.vendor_name(event_pb2.Event(vendor=event_pb2.VENDOR_PIPEDRIVE)), "VENDOR_PIPEDRIVE")


if __name__ == "__main__":
    unittest.main()
