from google.protobuf import timestamp_pb2 as _timestamp_pb2
from hookstream.v1 import ingest_service_pb2 as _ingest_service_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReplayFailure(_message.Message):
    __slots__ = ["event_id", "rejection"]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    REJECTION_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    rejection: _ingest_service_pb2.Rejection
    def __init__(self, event_id: _Optional[str] = ..., rejection: _Optional[_Union[_ingest_service_pb2.Rejection, _Mapping]] = ...) -> None: ...

class ReplayNormalizationRequest(_message.Message):
    __slots__ = ["dry_run", "end_time", "page_token", "source", "start_time"]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    dry_run: bool
    end_time: _timestamp_pb2.Timestamp
    page_token: str
    source: str
    start_time: _timestamp_pb2.Timestamp
    def __init__(self, source: _Optional[str] = ..., start_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., dry_run: bool = ..., page_token: _Optional[str] = ...) -> None: ...

class ReplayNormalizationResponse(_message.Message):
    __slots__ = ["appended", "changed", "corrections_skipped", "failed", "failures", "next_page_token", "scanned", "unchanged", "without_raw"]
    APPENDED_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    CORRECTIONS_SKIPPED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SCANNED_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    WITHOUT_RAW_FIELD_NUMBER: _ClassVar[int]
    appended: int
    changed: int
    corrections_skipped: int
    failed: int
    failures: _containers.RepeatedCompositeFieldContainer[ReplayFailure]
    next_page_token: str
    scanned: int
    unchanged: int
    without_raw: int
    def __init__(self, scanned: _Optional[int] = ..., unchanged: _Optional[int] = ..., changed: _Optional[int] = ..., appended: _Optional[int] = ..., without_raw: _Optional[int] = ..., failed: _Optional[int] = ..., failures: _Optional[_Iterable[_Union[ReplayFailure, _Mapping]]] = ..., corrections_skipped: _Optional[int] = ..., next_page_token: _Optional[str] = ...) -> None: ...
