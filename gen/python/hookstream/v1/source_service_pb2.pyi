from google.protobuf import timestamp_pb2 as _timestamp_pb2
from hookstream.v1 import event_pb2 as _event_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor
SOURCE_AUTH_SCHEME_BASIC: SourceAuthScheme
SOURCE_AUTH_SCHEME_HANDSHAKE_KEY: SourceAuthScheme
SOURCE_AUTH_SCHEME_NONE: SourceAuthScheme
SOURCE_AUTH_SCHEME_TOKEN: SourceAuthScheme
SOURCE_AUTH_SCHEME_UNSPECIFIED: SourceAuthScheme

class GetSourceCredentialsRequest(_message.Message):
    __slots__ = ["source"]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    source: str
    def __init__(self, source: _Optional[str] = ...) -> None: ...

class GetSourceCredentialsResponse(_message.Message):
    __slots__ = ["setup_fields"]
    SETUP_FIELDS_FIELD_NUMBER: _ClassVar[int]
    setup_fields: _containers.RepeatedCompositeFieldContainer[SetupField]
    def __init__(self, setup_fields: _Optional[_Iterable[_Union[SetupField, _Mapping]]] = ...) -> None: ...

class ListSourcesRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class ListSourcesResponse(_message.Message):
    __slots__ = ["sources"]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    sources: _containers.RepeatedCompositeFieldContainer[Source]
    def __init__(self, sources: _Optional[_Iterable[_Union[Source, _Mapping]]] = ...) -> None: ...

class SetupField(_message.Message):
    __slots__ = ["label", "masked_value", "secret", "value"]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    MASKED_VALUE_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    label: str
    masked_value: str
    secret: bool
    value: str
    def __init__(self, label: _Optional[str] = ..., value: _Optional[str] = ..., secret: bool = ..., masked_value: _Optional[str] = ...) -> None: ...

class Source(_message.Message):
    __slots__ = ["auth_scheme", "name", "rate_limit", "setup_fields", "setup_location", "stats", "vendor", "vendor_title", "webhook_path", "webhook_url"]
    AUTH_SCHEME_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_FIELD_NUMBER: _ClassVar[int]
    SETUP_FIELDS_FIELD_NUMBER: _ClassVar[int]
    SETUP_LOCATION_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    VENDOR_TITLE_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_PATH_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_URL_FIELD_NUMBER: _ClassVar[int]
    auth_scheme: SourceAuthScheme
    name: str
    rate_limit: float
    setup_fields: _containers.RepeatedCompositeFieldContainer[SetupField]
    setup_location: str
    stats: SourceStats
    vendor: _event_pb2.Vendor
    vendor_title: str
    webhook_path: str
    webhook_url: str
    def __init__(self, name: _Optional[str] = ..., vendor: _Optional[_Union[_event_pb2.Vendor, str]] = ..., vendor_title: _Optional[str] = ..., auth_scheme: _Optional[_Union[SourceAuthScheme, str]] = ..., webhook_path: _Optional[str] = ..., webhook_url: _Optional[str] = ..., setup_location: _Optional[str] = ..., setup_fields: _Optional[_Iterable[_Union[SetupField, _Mapping]]] = ..., rate_limit: _Optional[float] = ..., stats: _Optional[_Union[SourceStats, _Mapping]] = ...) -> None: ...

class SourceError(_message.Message):
    __slots__ = ["message", "outcome", "time"]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    message: str
    outcome: str
    time: _timestamp_pb2.Timestamp
    def __init__(self, time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., outcome: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class SourceStats(_message.Message):
    __slots__ = ["accepted", "duplicate", "last_error", "last_request_time", "quarantined", "rate_limited", "unauthenticated", "unavailable"]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    LAST_REQUEST_TIME_FIELD_NUMBER: _ClassVar[int]
    QUARANTINED_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMITED_FIELD_NUMBER: _ClassVar[int]
    UNAUTHENTICATED_FIELD_NUMBER: _ClassVar[int]
    UNAVAILABLE_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    duplicate: int
    last_error: SourceError
    last_request_time: _timestamp_pb2.Timestamp
    quarantined: int
    rate_limited: int
    unauthenticated: int
    unavailable: int
    def __init__(self, accepted: _Optional[int] = ..., duplicate: _Optional[int] = ..., quarantined: _Optional[int] = ..., unauthenticated: _Optional[int] = ..., rate_limited: _Optional[int] = ..., unavailable: _Optional[int] = ..., last_request_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., last_error: _Optional[_Union[SourceError, _Mapping]] = ...) -> None: ...

class SourceAuthScheme(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
