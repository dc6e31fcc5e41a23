from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PipedriveChangeV1(_message.Message):
    __slots__ = ["current", "event", "extra", "matches_filters", "meta", "previous", "retry"]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    MATCHES_FILTERS_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    RETRY_FIELD_NUMBER: _ClassVar[int]
    current: _struct_pb2.Value
    event: str
    extra: _struct_pb2.Struct
    matches_filters: _struct_pb2.Struct
    meta: PipedriveMetaV1
    previous: _struct_pb2.Value
    retry: int
    def __init__(self, event: _Optional[str] = ..., meta: _Optional[_Union[PipedriveMetaV1, _Mapping]] = ..., current: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., previous: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., retry: _Optional[int] = ..., matches_filters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., extra: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class PipedriveChangeV2(_message.Message):
    __slots__ = ["data", "extra", "meta", "previous"]
    DATA_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    data: _struct_pb2.Struct
    extra: _struct_pb2.Struct
    meta: PipedriveMetaV2
    previous: _struct_pb2.Struct
    def __init__(self, meta: _Optional[_Union[PipedriveMetaV2, _Mapping]] = ..., data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., previous: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., extra: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class PipedriveMetaV1(_message.Message):
    __slots__ = ["action", "change_source", "company_id", "extra", "host", "id", "is_bulk_update", "object", "permitted_user_ids", "pipedrive_service_name", "timestamp", "timestamp_micro", "timestamp_milli", "trans_pending", "user_id", "webhook_id"]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    CHANGE_SOURCE_FIELD_NUMBER: _ClassVar[int]
    COMPANY_ID_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    IS_BULK_UPDATE_FIELD_NUMBER: _ClassVar[int]
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    PERMITTED_USER_IDS_FIELD_NUMBER: _ClassVar[int]
    PIPEDRIVE_SERVICE_NAME_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MICRO_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MILLI_FIELD_NUMBER: _ClassVar[int]
    TRANS_PENDING_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_ID_FIELD_NUMBER: _ClassVar[int]
    action: str
    change_source: str
    company_id: str
    extra: _struct_pb2.Struct
    host: str
    id: str
    is_bulk_update: bool
    object: str
    permitted_user_ids: _containers.RepeatedScalarFieldContainer[str]
    pipedrive_service_name: str
    timestamp: int
    timestamp_micro: int
    timestamp_milli: int
    trans_pending: bool
    user_id: str
    webhook_id: str
    def __init__(self, action: _Optional[str] = ..., object: _Optional[str] = ..., id: _Optional[str] = ..., company_id: _Optional[str] = ..., user_id: _Optional[str] = ..., host: _Optional[str] = ..., timestamp: _Optional[int] = ..., timestamp_micro: _Optional[int] = ..., permitted_user_ids: _Optional[_Iterable[str]] = ..., trans_pending: bool = ..., is_bulk_update: bool = ..., pipedrive_service_name: _Optional[str] = ..., change_source: _Optional[str] = ..., webhook_id: _Optional[str] = ..., extra: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., timestamp_milli: _Optional[int] = ...) -> None: ...

class PipedriveMetaV2(_message.Message):
    __slots__ = ["action", "attempt", "change_source", "company_id", "correlation_id", "entity", "entity_id", "extra", "host", "id", "is_bulk_edit", "merged_from_id", "merged_to_id", "permitted_user_ids", "timestamp", "type", "user_id", "version", "webhook_id", "webhook_owner_id"]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    CHANGE_SOURCE_FIELD_NUMBER: _ClassVar[int]
    COMPANY_ID_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    ENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    IS_BULK_EDIT_FIELD_NUMBER: _ClassVar[int]
    MERGED_FROM_ID_FIELD_NUMBER: _ClassVar[int]
    MERGED_TO_ID_FIELD_NUMBER: _ClassVar[int]
    PERMITTED_USER_IDS_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_ID_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    action: str
    attempt: int
    change_source: str
    company_id: str
    correlation_id: str
    entity: str
    entity_id: str
    extra: _struct_pb2.Struct
    host: str
    id: str
    is_bulk_edit: bool
    merged_from_id: str
    merged_to_id: str
    permitted_user_ids: _containers.RepeatedScalarFieldContainer[str]
    timestamp: _timestamp_pb2.Timestamp
    type: str
    user_id: str
    version: str
    webhook_id: str
    webhook_owner_id: str
    def __init__(self, action: _Optional[str] = ..., entity: _Optional[str] = ..., entity_id: _Optional[str] = ..., id: _Optional[str] = ..., correlation_id: _Optional[str] = ..., company_id: _Optional[str] = ..., user_id: _Optional[str] = ..., webhook_id: _Optional[str] = ..., webhook_owner_id: _Optional[str] = ..., timestamp: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., version: _Optional[str] = ..., type: _Optional[str] = ..., is_bulk_edit: bool = ..., change_source: _Optional[str] = ..., attempt: _Optional[int] = ..., host: _Optional[str] = ..., permitted_user_ids: _Optional[_Iterable[str]] = ..., merged_to_id: _Optional[str] = ..., merged_from_id: _Optional[str] = ..., extra: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...
