from google.protobuf import timestamp_pb2 as _timestamp_pb2
from hookstream.v1 import event_pb2 as _event_pb2
from hookstream.v1 import ingest_service_pb2 as _ingest_service_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor
QUARANTINE_STATE_PENDING: QuarantineState
QUARANTINE_STATE_REPROCESSED: QuarantineState
QUARANTINE_STATE_UNSPECIFIED: QuarantineState

class DiscardQuarantinedRequest(_message.Message):
    __slots__ = ["id"]
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DiscardQuarantinedResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class ListQuarantinedRequest(_message.Message):
    __slots__ = ["include_reprocessed", "page_size", "page_token", "source"]
    INCLUDE_REPROCESSED_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    include_reprocessed: bool
    page_size: int
    page_token: str
    source: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., source: _Optional[str] = ..., include_reprocessed: bool = ...) -> None: ...

class ListQuarantinedResponse(_message.Message):
    __slots__ = ["next_page_token", "requests"]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    next_page_token: str
    requests: _containers.RepeatedCompositeFieldContainer[QuarantinedRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[QuarantinedRequest, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class QuarantinedRequest(_message.Message):
    __slots__ = ["body", "body_text", "content_type", "event_id", "id", "received_at", "rejection", "source", "state", "vendor"]
    BODY_FIELD_NUMBER: _ClassVar[int]
    BODY_TEXT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    REJECTION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    body: bytes
    body_text: str
    content_type: str
    event_id: str
    id: str
    received_at: _timestamp_pb2.Timestamp
    rejection: _ingest_service_pb2.Rejection
    source: str
    state: QuarantineState
    vendor: _event_pb2.Vendor
    def __init__(self, id: _Optional[str] = ..., source: _Optional[str] = ..., vendor: _Optional[_Union[_event_pb2.Vendor, str]] = ..., rejection: _Optional[_Union[_ingest_service_pb2.Rejection, _Mapping]] = ..., received_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., content_type: _Optional[str] = ..., body: _Optional[bytes] = ..., state: _Optional[_Union[QuarantineState, str]] = ..., event_id: _Optional[str] = ..., body_text: _Optional[str] = ...) -> None: ...

class ReprocessAllQuarantinedRequest(_message.Message):
    __slots__ = ["page_token", "source"]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    page_token: str
    source: str
    def __init__(self, source: _Optional[str] = ..., page_token: _Optional[str] = ...) -> None: ...

class ReprocessAllQuarantinedResponse(_message.Message):
    __slots__ = ["next_page_token", "reprocessed", "results", "still_failing"]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    REPROCESSED_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    STILL_FAILING_FIELD_NUMBER: _ClassVar[int]
    next_page_token: str
    reprocessed: int
    results: _containers.RepeatedCompositeFieldContainer[ReprocessResult]
    still_failing: int
    def __init__(self, results: _Optional[_Iterable[_Union[ReprocessResult, _Mapping]]] = ..., reprocessed: _Optional[int] = ..., still_failing: _Optional[int] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ReprocessQuarantinedRequest(_message.Message):
    __slots__ = ["id"]
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ReprocessQuarantinedResponse(_message.Message):
    __slots__ = ["result"]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: ReprocessResult
    def __init__(self, result: _Optional[_Union[ReprocessResult, _Mapping]] = ...) -> None: ...

class ReprocessResult(_message.Message):
    __slots__ = ["event_id", "id", "outcome", "rejection"]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REJECTION_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    id: str
    outcome: _ingest_service_pb2.IngestOutcome
    rejection: _ingest_service_pb2.Rejection
    def __init__(self, id: _Optional[str] = ..., outcome: _Optional[_Union[_ingest_service_pb2.IngestOutcome, str]] = ..., event_id: _Optional[str] = ..., rejection: _Optional[_Union[_ingest_service_pb2.Rejection, _Mapping]] = ...) -> None: ...

class QuarantineState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
