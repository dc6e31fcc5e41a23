from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ClinchPadActivity(_message.Message):
    __slots__ = ["attachment_filename", "attachment_url", "contact_name", "created_at", "extra", "id", "lead_assigned_to_name", "lead_size", "new_stage_name", "note_content", "old_lead_assigned_to_name", "old_lead_name", "old_lead_size", "old_record_value", "old_stage_name", "old_todo_date", "old_todo_name", "old_todo_time", "old_todo_type", "product_name", "product_price", "product_quantity", "record_name", "record_value", "source_name", "subject", "todo_date", "todo_done", "todo_name", "todo_time", "todo_type", "type", "user", "zone_name"]
    ATTACHMENT_FILENAME_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENT_URL_FIELD_NUMBER: _ClassVar[int]
    CONTACT_NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    LEAD_ASSIGNED_TO_NAME_FIELD_NUMBER: _ClassVar[int]
    LEAD_SIZE_FIELD_NUMBER: _ClassVar[int]
    NEW_STAGE_NAME_FIELD_NUMBER: _ClassVar[int]
    NOTE_CONTENT_FIELD_NUMBER: _ClassVar[int]
    OLD_LEAD_ASSIGNED_TO_NAME_FIELD_NUMBER: _ClassVar[int]
    OLD_LEAD_NAME_FIELD_NUMBER: _ClassVar[int]
    OLD_LEAD_SIZE_FIELD_NUMBER: _ClassVar[int]
    OLD_RECORD_VALUE_FIELD_NUMBER: _ClassVar[int]
    OLD_STAGE_NAME_FIELD_NUMBER: _ClassVar[int]
    OLD_TODO_DATE_FIELD_NUMBER: _ClassVar[int]
    OLD_TODO_NAME_FIELD_NUMBER: _ClassVar[int]
    OLD_TODO_TIME_FIELD_NUMBER: _ClassVar[int]
    OLD_TODO_TYPE_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_NAME_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_PRICE_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    RECORD_NAME_FIELD_NUMBER: _ClassVar[int]
    RECORD_VALUE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_NAME_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    TODO_DATE_FIELD_NUMBER: _ClassVar[int]
    TODO_DONE_FIELD_NUMBER: _ClassVar[int]
    TODO_NAME_FIELD_NUMBER: _ClassVar[int]
    TODO_TIME_FIELD_NUMBER: _ClassVar[int]
    TODO_TYPE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    ZONE_NAME_FIELD_NUMBER: _ClassVar[int]
    attachment_filename: str
    attachment_url: str
    contact_name: str
    created_at: _timestamp_pb2.Timestamp
    extra: _struct_pb2.Struct
    id: str
    lead_assigned_to_name: str
    lead_size: str
    new_stage_name: str
    note_content: str
    old_lead_assigned_to_name: str
    old_lead_name: str
    old_lead_size: str
    old_record_value: str
    old_stage_name: str
    old_todo_date: str
    old_todo_name: str
    old_todo_time: str
    old_todo_type: str
    product_name: str
    product_price: str
    product_quantity: str
    record_name: str
    record_value: str
    source_name: str
    subject: str
    todo_date: str
    todo_done: bool
    todo_name: str
    todo_time: str
    todo_type: str
    type: str
    user: ClinchPadUser
    zone_name: str
    def __init__(self, id: _Optional[str] = ..., created_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., type: _Optional[str] = ..., user: _Optional[_Union[ClinchPadUser, _Mapping]] = ..., old_stage_name: _Optional[str] = ..., new_stage_name: _Optional[str] = ..., old_lead_name: _Optional[str] = ..., lead_assigned_to_name: _Optional[str] = ..., old_lead_assigned_to_name: _Optional[str] = ..., lead_size: _Optional[str] = ..., old_lead_size: _Optional[str] = ..., todo_name: _Optional[str] = ..., todo_type: _Optional[str] = ..., todo_date: _Optional[str] = ..., todo_time: _Optional[str] = ..., old_todo_name: _Optional[str] = ..., old_todo_type: _Optional[str] = ..., old_todo_date: _Optional[str] = ..., old_todo_time: _Optional[str] = ..., todo_done: bool = ..., note_content: _Optional[str] = ..., attachment_filename: _Optional[str] = ..., attachment_url: _Optional[str] = ..., record_name: _Optional[str] = ..., record_value: _Optional[str] = ..., old_record_value: _Optional[str] = ..., contact_name: _Optional[str] = ..., product_name: _Optional[str] = ..., product_quantity: _Optional[str] = ..., product_price: _Optional[str] = ..., zone_name: _Optional[str] = ..., source_name: _Optional[str] = ..., subject: _Optional[str] = ..., extra: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ClinchPadLead(_message.Message):
    __slots__ = ["extra", "id", "name", "pipe", "stage"]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PIPE_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    extra: _struct_pb2.Struct
    id: str
    name: str
    pipe: ClinchPadRef
    stage: ClinchPadRef
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., stage: _Optional[_Union[ClinchPadRef, _Mapping]] = ..., pipe: _Optional[_Union[ClinchPadRef, _Mapping]] = ..., extra: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ClinchPadRef(_message.Message):
    __slots__ = ["extra", "id", "name"]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    extra: _struct_pb2.Struct
    id: str
    name: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., extra: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ClinchPadUser(_message.Message):
    __slots__ = ["extra", "id", "name", "photo_url"]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PHOTO_URL_FIELD_NUMBER: _ClassVar[int]
    extra: _struct_pb2.Struct
    id: str
    name: str
    photo_url: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., photo_url: _Optional[str] = ..., extra: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ClinchPadWebhook(_message.Message):
    __slots__ = ["activity", "extra", "lead"]
    ACTIVITY_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    LEAD_FIELD_NUMBER: _ClassVar[int]
    activity: ClinchPadActivity
    extra: _struct_pb2.Struct
    lead: ClinchPadLead
    def __init__(self, activity: _Optional[_Union[ClinchPadActivity, _Mapping]] = ..., lead: _Optional[_Union[ClinchPadLead, _Mapping]] = ..., extra: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...
