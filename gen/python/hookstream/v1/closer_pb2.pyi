from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CloserAssignee(_message.Message):
    __slots__ = ["email", "extra", "first_name", "id", "is_bot", "last_name"]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    FIRST_NAME_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    IS_BOT_FIELD_NUMBER: _ClassVar[int]
    LAST_NAME_FIELD_NUMBER: _ClassVar[int]
    email: str
    extra: _struct_pb2.Struct
    first_name: str
    id: str
    is_bot: bool
    last_name: str
    def __init__(self, id: _Optional[str] = ..., first_name: _Optional[str] = ..., last_name: _Optional[str] = ..., email: _Optional[str] = ..., is_bot: bool = ..., extra: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class CloserAuthor(_message.Message):
    __slots__ = ["email", "extra", "id", "phone", "role"]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    email: str
    extra: _struct_pb2.Struct
    id: str
    phone: str
    role: str
    def __init__(self, id: _Optional[str] = ..., role: _Optional[str] = ..., email: _Optional[str] = ..., phone: _Optional[str] = ..., extra: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class CloserBackOfficeEntry(_message.Message):
    __slots__ = ["extra", "key", "value"]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    extra: _struct_pb2.Struct
    key: str
    value: str
    def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ..., extra: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class CloserConversation(_message.Message):
    __slots__ = ["assignee", "closed_type", "customer", "email", "event_type", "extra", "message_history", "phone", "timestamp"]
    ASSIGNEE_FIELD_NUMBER: _ClassVar[int]
    CLOSED_TYPE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_HISTORY_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    assignee: CloserAssignee
    closed_type: str
    customer: CloserCustomer
    email: str
    event_type: str
    extra: _struct_pb2.Struct
    message_history: _containers.RepeatedCompositeFieldContainer[CloserMessage]
    phone: str
    timestamp: int
    def __init__(self, event_type: _Optional[str] = ..., timestamp: _Optional[int] = ..., customer: _Optional[_Union[CloserCustomer, _Mapping]] = ..., closed_type: _Optional[str] = ..., assignee: _Optional[_Union[CloserAssignee, _Mapping]] = ..., message_history: _Optional[_Iterable[_Union[CloserMessage, _Mapping]]] = ..., email: _Optional[str] = ..., phone: _Optional[str] = ..., extra: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class CloserCustomer(_message.Message):
    __slots__ = ["back_office_data", "email", "extra", "first_name", "id", "last_name", "phone", "random_name"]
    BACK_OFFICE_DATA_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    FIRST_NAME_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    LAST_NAME_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    RANDOM_NAME_FIELD_NUMBER: _ClassVar[int]
    back_office_data: _containers.RepeatedCompositeFieldContainer[CloserBackOfficeEntry]
    email: str
    extra: _struct_pb2.Struct
    first_name: str
    id: str
    last_name: str
    phone: str
    random_name: str
    def __init__(self, id: _Optional[str] = ..., first_name: _Optional[str] = ..., last_name: _Optional[str] = ..., random_name: _Optional[str] = ..., email: _Optional[str] = ..., phone: _Optional[str] = ..., back_office_data: _Optional[_Iterable[_Union[CloserBackOfficeEntry, _Mapping]]] = ..., extra: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class CloserMessage(_message.Message):
    __slots__ = ["author", "extra", "message", "timestamp"]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    author: CloserAuthor
    extra: _struct_pb2.Struct
    message: str
    timestamp: int
    def __init__(self, author: _Optional[_Union[CloserAuthor, _Mapping]] = ..., message: _Optional[str] = ..., timestamp: _Optional[int] = ..., extra: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...
