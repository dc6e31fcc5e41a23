from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from hookstream.v1 import clinchpad_pb2 as _clinchpad_pb2
from hookstream.v1 import closer_pb2 as _closer_pb2
from hookstream.v1 import pipedrive_pb2 as _pipedrive_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

ACTOR_KIND_AGENT: ActorKind
ACTOR_KIND_BOT: ActorKind
ACTOR_KIND_CUSTOMER: ActorKind
ACTOR_KIND_SYSTEM: ActorKind
ACTOR_KIND_UNSPECIFIED: ActorKind
ACTOR_KIND_USER: ActorKind
DESCRIPTOR: _descriptor.FileDescriptor
VENDOR_CLINCHPAD: Vendor
VENDOR_CLOSER: Vendor
VENDOR_PIPEDRIVE: Vendor
VENDOR_UNSPECIFIED: Vendor

class Actor(_message.Message):
    __slots__ = ["email", "id", "kind", "name"]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    email: str
    id: str
    kind: ActorKind
    name: str
    def __init__(self, kind: _Optional[_Union[ActorKind, str]] = ..., id: _Optional[str] = ..., name: _Optional[str] = ..., email: _Optional[str] = ...) -> None: ...

class Change(_message.Message):
    __slots__ = ["field", "new_value", "old_value"]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    NEW_VALUE_FIELD_NUMBER: _ClassVar[int]
    OLD_VALUE_FIELD_NUMBER: _ClassVar[int]
    field: str
    new_value: _struct_pb2.Value
    old_value: _struct_pb2.Value
    def __init__(self, field: _Optional[str] = ..., old_value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., new_value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class Contact(_message.Message):
    __slots__ = ["email", "id", "name", "phone"]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    email: str
    id: str
    name: str
    phone: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., email: _Optional[str] = ..., phone: _Optional[str] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ["actor", "changes", "clinchpad", "closer", "contact", "delivery_attempt", "id", "merge", "occurred_at", "pipedrive_v1", "pipedrive_v2", "raw", "received_at", "source", "subject", "supersedes", "tenant_id", "type", "vendor", "vendor_type"]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    CLINCHPAD_FIELD_NUMBER: _ClassVar[int]
    CLOSER_FIELD_NUMBER: _ClassVar[int]
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    MERGE_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    PIPEDRIVE_V1_FIELD_NUMBER: _ClassVar[int]
    PIPEDRIVE_V2_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    SUPERSEDES_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    VENDOR_TYPE_FIELD_NUMBER: _ClassVar[int]
    actor: Actor
    changes: _containers.RepeatedCompositeFieldContainer[Change]
    clinchpad: _clinchpad_pb2.ClinchPadWebhook
    closer: _closer_pb2.CloserConversation
    contact: Contact
    delivery_attempt: int
    id: str
    merge: Merge
    occurred_at: _timestamp_pb2.Timestamp
    pipedrive_v1: _pipedrive_pb2.PipedriveChangeV1
    pipedrive_v2: _pipedrive_pb2.PipedriveChangeV2
    raw: RawRequest
    received_at: _timestamp_pb2.Timestamp
    source: str
    subject: Subject
    supersedes: str
    tenant_id: str
    type: str
    vendor: Vendor
    vendor_type: str
    def __init__(self, id: _Optional[str] = ..., source: _Optional[str] = ..., vendor: _Optional[_Union[Vendor, str]] = ..., type: _Optional[str] = ..., vendor_type: _Optional[str] = ..., occurred_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., received_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., subject: _Optional[_Union[Subject, _Mapping]] = ..., actor: _Optional[_Union[Actor, _Mapping]] = ..., contact: _Optional[_Union[Contact, _Mapping]] = ..., changes: _Optional[_Iterable[_Union[Change, _Mapping]]] = ..., merge: _Optional[_Union[Merge, _Mapping]] = ..., tenant_id: _Optional[str] = ..., delivery_attempt: _Optional[int] = ..., supersedes: _Optional[str] = ..., closer: _Optional[_Union[_closer_pb2.CloserConversation, _Mapping]] = ..., pipedrive_v1: _Optional[_Union[_pipedrive_pb2.PipedriveChangeV1, _Mapping]] = ..., pipedrive_v2: _Optional[_Union[_pipedrive_pb2.PipedriveChangeV2, _Mapping]] = ..., clinchpad: _Optional[_Union[_clinchpad_pb2.ClinchPadWebhook, _Mapping]] = ..., raw: _Optional[_Union[RawRequest, _Mapping]] = ...) -> None: ...

class Merge(_message.Message):
    __slots__ = ["merged_from_id", "merged_into_id"]
    MERGED_FROM_ID_FIELD_NUMBER: _ClassVar[int]
    MERGED_INTO_ID_FIELD_NUMBER: _ClassVar[int]
    merged_from_id: str
    merged_into_id: str
    def __init__(self, merged_from_id: _Optional[str] = ..., merged_into_id: _Optional[str] = ...) -> None: ...

class RawRequest(_message.Message):
    __slots__ = ["body", "body_text", "content_type"]
    BODY_FIELD_NUMBER: _ClassVar[int]
    BODY_TEXT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    body: bytes
    body_text: str
    content_type: str
    def __init__(self, content_type: _Optional[str] = ..., body_text: _Optional[str] = ..., body: _Optional[bytes] = ...) -> None: ...

class Subject(_message.Message):
    __slots__ = ["id", "kind", "name"]
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: str
    name: str
    def __init__(self, kind: _Optional[str] = ..., id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class Vendor(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class ActorKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
