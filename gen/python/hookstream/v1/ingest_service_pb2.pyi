from google.api import httpbody_pb2 as _httpbody_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor
INGEST_OUTCOME_ACCEPTED: IngestOutcome
INGEST_OUTCOME_DUPLICATE: IngestOutcome
INGEST_OUTCOME_QUARANTINED: IngestOutcome
INGEST_OUTCOME_UNSPECIFIED: IngestOutcome
REJECTION_CODE_EMPTY_BODY: RejectionCode
REJECTION_CODE_INVALID_FIELD: RejectionCode
REJECTION_CODE_INVALID_UTF8: RejectionCode
REJECTION_CODE_MALFORMED_JSON: RejectionCode
REJECTION_CODE_UNKNOWN_FORMAT: RejectionCode
REJECTION_CODE_UNSPECIFIED: RejectionCode
REJECTION_CODE_WRONG_SHAPE: RejectionCode

class IngestWebhookRequest(_message.Message):
    __slots__ = ["body", "headers", "params", "source"]
    class HeadersEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class ParamsEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    BODY_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    body: _httpbody_pb2.HttpBody
    headers: _containers.ScalarMap[str, str]
    params: _containers.ScalarMap[str, str]
    source: str
    def __init__(self, source: _Optional[str] = ..., body: _Optional[_Union[_httpbody_pb2.HttpBody, _Mapping]] = ..., headers: _Optional[_Mapping[str, str]] = ..., params: _Optional[_Mapping[str, str]] = ...) -> None: ...

class IngestWebhookResponse(_message.Message):
    __slots__ = ["duplicate", "event_id", "outcome", "quarantine_id", "rejection"]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    QUARANTINE_ID_FIELD_NUMBER: _ClassVar[int]
    REJECTION_FIELD_NUMBER: _ClassVar[int]
    duplicate: bool
    event_id: str
    outcome: IngestOutcome
    quarantine_id: str
    rejection: Rejection
    def __init__(self, outcome: _Optional[_Union[IngestOutcome, str]] = ..., event_id: _Optional[str] = ..., duplicate: bool = ..., quarantine_id: _Optional[str] = ..., rejection: _Optional[_Union[Rejection, _Mapping]] = ...) -> None: ...

class Rejection(_message.Message):
    __slots__ = ["code", "field", "message"]
    CODE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: RejectionCode
    field: str
    message: str
    def __init__(self, code: _Optional[_Union[RejectionCode, str]] = ..., field: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class IngestOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class RejectionCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
