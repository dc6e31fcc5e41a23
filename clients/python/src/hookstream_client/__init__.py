"""A small layer over hookstream's generated gRPC stubs.

The generated modules (``hookstream.v1.*_pb2`` for the messages,
``*_pb2_grpc`` for the stubs) are the API; this module adds what every
consumer writes anyway: a channel that sends the API token, and an event
stream that skips heartbeats and reconnects after the last event it handed
out, so that nothing is missed or repeated.

    import hookstream_client

    with hookstream_client.connect("localhost:9090", token) as client:
        for d in client.subscribe('event.source == "pipedrive"', after_cursor=saved):
            print(d.event.type, d.event.subject.id)
            saved = d.cursor
"""

from __future__ import annotations

import datetime
import os
import time
from typing import Callable, Dict, Iterator, NamedTuple, Optional, Sequence, Tuple, Union

import grpc

from hookstream.v1 import (
    admin_service_pb2_grpc,
    endpoint_service_pb2_grpc,
    event_pb2,
    event_service_pb2,
    event_service_pb2_grpc,
    quarantine_service_pb2_grpc,
    source_service_pb2_grpc,
)

__all__ = ["Client", "connect", "vendor_name", "error_info", "ErrorInfo", "DEFAULT_ADDR", "FATAL_CODES"]

#: Address used when neither the argument nor HOOKSTREAM_ADDR gives one
#: (the server's default gRPC listener).
DEFAULT_ADDR = "127.0.0.1:9090"

#: Status codes that reconnecting cannot fix (a bad filter or cursor, a
#: cursor past the log's end, a missing or too weak token): ``subscribe``
#: raises them at once.
FATAL_CODES = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)

_MIN_BACKOFF = 0.25
_MAX_BACKOFF = 10.0

Start = Union[str, datetime.datetime]


def connect(
    addr: Optional[str] = None,
    token: Optional[str] = None,
    *,
    tls: bool = False,
    root_certificates: Optional[bytes] = None,
    options: Sequence[Tuple[str, object]] = (),
) -> "Client":
    """Opens a channel to a hookstream server's gRPC port.

    ``addr`` defaults to $HOOKSTREAM_ADDR, then 127.0.0.1:9090; ``token`` to
    $HOOKSTREAM_TOKEN. The token goes in ``authorization: Bearer <token>``
    on every call. With ``tls`` the server's certificate is checked against
    ``root_certificates`` (PEM; default: the system roots). Without it the
    channel is plaintext, as the server's default listener is; keep such
    channels on localhost or a private network, the token travels in clear.
    """
    addr = addr or os.environ.get("HOOKSTREAM_ADDR") or DEFAULT_ADDR
    token = token or os.environ.get("HOOKSTREAM_TOKEN") or None
    opts = list(options)
    if not any(k == "grpc.max_reconnect_backoff_ms" for k, _ in opts):
        # gRPC waits up to 2 minutes between connection attempts after a
        # long outage; keep it at subscribe's own longest pause.
        opts.append(("grpc.max_reconnect_backoff_ms", int(_MAX_BACKOFF * 1000)))
    if tls:
        creds = grpc.ssl_channel_credentials(root_certificates)
        if token:
            creds = grpc.composite_channel_credentials(creds, grpc.access_token_call_credentials(token))
        return Client(grpc.secure_channel(addr, creds, options=opts))
    channel = grpc.insecure_channel(addr, options=opts)
    if token:
        # gRPC refuses call credentials on a plaintext channel, so the
        # header is added by an interceptor instead.
        channel = grpc.intercept_channel(channel, _Bearer(token))
    return Client(channel)


class Client:
    """A channel to one server and a stub for each of its services.

    ``events``, ``quarantine``, ``admin``, ``endpoints`` and ``sources`` are the
    generated stubs; call them with the generated request messages. Use the
    client as a context manager, or call ``close``.
    """

    def __init__(self, channel: grpc.Channel):
        self.channel = channel
        self.events = event_service_pb2_grpc.EventServiceStub(channel)
        self.quarantine = quarantine_service_pb2_grpc.QuarantineServiceStub(channel)
        self.admin = admin_service_pb2_grpc.AdminServiceStub(channel)
        self.endpoints = endpoint_service_pb2_grpc.EndpointServiceStub(channel)
        self.sources = source_service_pb2_grpc.SourceServiceStub(channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def subscribe(
        self,
        filter: str = "",
        *,
        after_cursor: Optional[str] = None,
        start: Start = "now",
        include_raw: bool = False,
        reconnect: bool = True,
        on_reconnect: Optional[Callable[[Exception, float], None]] = None,
    ) -> Iterator[event_service_pb2.EventDelivery]:
        """Yields the events of a Subscribe stream, oldest first.

        Each item is an ``EventDelivery``: ``.event`` (a typed
        ``hookstream.v1.Event``) and ``.cursor``. Store the cursor of the
        last event you processed and pass it as ``after_cursor`` next time
        to go on right after it. Without a cursor the stream starts at
        ``start``: ``"now"`` (the default), ``"beginning"``, or an aware
        ``datetime``. ``filter`` is a CEL expression over ``event``; the
        server rejects a bad one with INVALID_ARGUMENT.

        Heartbeats are skipped. When the stream breaks (the server
        restarts, the network fails) and ``reconnect`` is on, it is opened
        again after a growing pause (0.25 s up to 10 s), right after the
        last event yielded, so none is missed or repeated; before the first
        event a stream that started "now" is reopened at the time it first
        opened. ``on_reconnect(error, pause)`` is called before each pause.
        Errors in FATAL_CODES are raised, reconnecting or not. Closing the
        generator (or leaving the ``for`` loop) cancels the call.
        """
        first = _subscribe_request(filter, after_cursor, start, include_raw)
        cursor = after_cursor or ""
        opened_at: Optional[datetime.datetime] = None
        backoff = _MIN_BACKOFF
        while True:
            if cursor:
                req = event_service_pb2.SubscribeRequest(filter=filter, include_raw=include_raw, after_cursor=cursor)
            elif opened_at is not None and first.WhichOneof("start") == "position" and first.position == event_service_pb2.START_POSITION_NOW:
                req = event_service_pb2.SubscribeRequest(filter=filter, include_raw=include_raw)
                req.start_time.FromDatetime(opened_at)
            else:
                req = first
            if opened_at is None:
                opened_at = datetime.datetime.now(datetime.timezone.utc)
            call = self.events.Subscribe(req)
            try:
                for msg in call:
                    if msg.WhichOneof("message") != "delivery":
                        continue  # heartbeat
                    yield msg.delivery
                    cursor = msg.delivery.cursor
                    backoff = _MIN_BACKOFF
                err: Exception = ConnectionError("the server ended the stream")
            except grpc.RpcError as e:
                if not reconnect or e.code() in FATAL_CODES:
                    raise
                err = e
            finally:
                call.cancel()
            if not reconnect:
                return
            if on_reconnect is not None:
                on_reconnect(err, backoff)
            time.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)


def _subscribe_request(filter: str, after_cursor: Optional[str], start: Start, include_raw: bool) -> event_service_pb2.SubscribeRequest:
    req = event_service_pb2.SubscribeRequest(filter=filter, include_raw=include_raw)
    if after_cursor:
        req.after_cursor = after_cursor
    elif isinstance(start, datetime.datetime):
        if start.tzinfo is None:
            raise ValueError("start: use an aware datetime (with a tzinfo), not a naive one")
        req.start_time.FromDatetime(start)
    elif start == "now":
        req.position = event_service_pb2.START_POSITION_NOW
    elif start == "beginning":
        req.position = event_service_pb2.START_POSITION_BEGINNING
    else:
        raise ValueError(f"start: {start!r} is not 'now', 'beginning' or a datetime")
    return req


def vendor_name(event: event_pb2.Event) -> str:
    """The event's vendor as its enum name, e.g. ``VENDOR_PIPEDRIVE``."""
    return event_pb2.Vendor.Name(event.vendor)


class _Bearer(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds ``authorization: Bearer <token>`` to every call's metadata."""

    def __init__(self, token: str):
        self._header = ("authorization", "Bearer " + token)

    def _details(self, d: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        return _CallDetails(
            method=d.method,
            timeout=d.timeout,
            metadata=list(d.metadata or ()) + [self._header],
            credentials=d.credentials,
            wait_for_ready=getattr(d, "wait_for_ready", None),
            compression=getattr(d, "compression", None),
        )

    def intercept_unary_unary(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(self, continuation, client_call_details, request_iterator):
        return continuation(self._details(client_call_details), request_iterator)

    def intercept_stream_stream(self, continuation, client_call_details, request_iterator):
        return continuation(self._details(client_call_details), request_iterator)


class _CallDetails(grpc.ClientCallDetails):
    def __init__(self, method, timeout, metadata, credentials, wait_for_ready, compression):
        self.method = method
        self.timeout = timeout
        self.metadata = metadata
        self.credentials = credentials
        self.wait_for_ready = wait_for_ready
        self.compression = compression


class ErrorInfo(NamedTuple):
    """The machine-readable part of a hookstream error (google.rpc.ErrorInfo)."""

    #: The stable reason, e.g. ``CURSOR_PAST_END``: branch on it.
    reason: str
    #: ``hookstream.dev``.
    domain: str
    #: The values the README's table names for the reason.
    metadata: Dict[str, str]


def error_info(error: grpc.RpcError) -> Optional[ErrorInfo]:
    """Returns the ErrorInfo of a failed call, or None when it has none.

    Every error hookstream makes carries one, in the call's trailing
    ``grpc-status-details-bin`` (a google.rpc.Status); it is read here
    without the google.rpc modules (grpcio-status, googleapis-common-protos).
    """
    trailers = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    for key, value in trailers or ():
        if key != "grpc-status-details-bin" or not isinstance(value, bytes):
            continue
        try:
            for no, any_bytes in _fields(value):
                if no != 3 or not isinstance(any_bytes, bytes):  # Status.details
                    continue
                any_fields = dict(_fields(any_bytes))
                if any_fields.get(1, b"").endswith(b"/google.rpc.ErrorInfo"):
                    return _error_info(any_fields.get(2, b""))
        except (IndexError, ValueError, UnicodeDecodeError):
            return None
    return None


def _error_info(data: bytes) -> ErrorInfo:
    reason, domain, metadata = "", "", {}
    for no, value in _fields(data):
        if not isinstance(value, bytes):
            continue
        if no == 1:
            reason = value.decode()
        elif no == 2:
            domain = value.decode()
        elif no == 3:  # a map entry: key 1, value 2
            entry = dict(_fields(value))
            metadata[entry.get(1, b"").decode()] = entry.get(2, b"").decode()
    return ErrorInfo(reason, domain, metadata)


def _fields(data: bytes) -> Iterator[Tuple[int, Union[int, bytes]]]:
    """Yields (field number, value) of a protobuf message's wire form:
    varints as ints, length-delimited fields as bytes; fixed-size fields
    are skipped."""
    i = 0
    while i < len(data):
        tag, i = _varint(data, i)
        no, wire = tag >> 3, tag & 7
        if wire == 0:
            v, i = _varint(data, i)
            yield no, v
        elif wire == 2:
            n, i = _varint(data, i)
            if i + n > len(data):
                raise ValueError("truncated field")
            yield no, data[i : i + n]
            i += n
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            raise ValueError("unsupported wire type %d" % wire)


def _varint(data: bytes, i: int) -> Tuple[int, int]:
    v, shift = 0, 0
    while True:
        b = data[i]
        i += 1
        v |= (b & 0x7F) << shift
        if not b & 0x80:
            return v, i
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")
