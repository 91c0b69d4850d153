from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Requests(_message.Message):
    __slots__ = ("frames",)
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedCompositeFieldContainer[Request]
    def __init__(self, frames: _Optional[_Iterable[_Union[Request, _Mapping]]] = ...) -> None: ...

class Responses(_message.Message):
    __slots__ = ("frames", "load")
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    LOAD_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedCompositeFieldContainer[Response]
    load: LoadReport
    def __init__(self, frames: _Optional[_Iterable[_Union[Response, _Mapping]]] = ..., load: _Optional[_Union[LoadReport, _Mapping]] = ...) -> None: ...

class LoadReport(_message.Message):
    __slots__ = ("running", "limit", "lag", "seen_call", "completed")
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    LAG_FIELD_NUMBER: _ClassVar[int]
    SEEN_CALL_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    running: int
    limit: int
    lag: float
    seen_call: int
    completed: int
    def __init__(self, running: _Optional[int] = ..., limit: _Optional[int] = ..., lag: _Optional[float] = ..., seen_call: _Optional[int] = ..., completed: _Optional[int] = ...) -> None: ...

class Task(_message.Message):
    __slots__ = ("id", "parent_id", "routine", "callable", "arguments", "proxy", "tags", "generator", "context", "headers", "buffers", "routine_slot")
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    ROUTINE_FIELD_NUMBER: _ClassVar[int]
    CALLABLE_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_FIELD_NUMBER: _ClassVar[int]
    PROXY_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    GENERATOR_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    BUFFERS_FIELD_NUMBER: _ClassVar[int]
    ROUTINE_SLOT_FIELD_NUMBER: _ClassVar[int]
    id: str
    parent_id: str
    routine: str
    callable: bytes
    arguments: bytes
    proxy: bytes
    tags: _containers.RepeatedScalarFieldContainer[str]
    generator: bool
    context: bytes
    headers: _containers.ScalarMap[str, str]
    buffers: _containers.RepeatedCompositeFieldContainer[Buffer]
    routine_slot: int
    def __init__(self, id: _Optional[str] = ..., parent_id: _Optional[str] = ..., routine: _Optional[str] = ..., callable: _Optional[bytes] = ..., arguments: _Optional[bytes] = ..., proxy: _Optional[bytes] = ..., tags: _Optional[_Iterable[str]] = ..., generator: _Optional[bool] = ..., context: _Optional[bytes] = ..., headers: _Optional[_Mapping[str, str]] = ..., buffers: _Optional[_Iterable[_Union[Buffer, _Mapping]]] = ..., routine_slot: _Optional[int] = ...) -> None: ...

class Buffer(_message.Message):
    __slots__ = ("writable", "digest", "cached")
    WRITABLE_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    writable: bool
    digest: bytes
    cached: bool
    def __init__(self, writable: _Optional[bool] = ..., digest: _Optional[bytes] = ..., cached: _Optional[bool] = ...) -> None: ...

class Step(_message.Message):
    __slots__ = ("kind", "value")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        NEXT: _ClassVar[Step.Kind]
        SEND: _ClassVar[Step.Kind]
        THROW: _ClassVar[Step.Kind]
        CLOSE: _ClassVar[Step.Kind]
    NEXT: Step.Kind
    SEND: Step.Kind
    THROW: Step.Kind
    CLOSE: Step.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    kind: Step.Kind
    value: bytes
    def __init__(self, kind: _Optional[_Union[Step.Kind, str]] = ..., value: _Optional[bytes] = ...) -> None: ...

class Cancel(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Request(_message.Message):
    __slots__ = ("call", "start", "step", "cancel", "context", "accept_by", "confirmed", "standby")
    CALL_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ACCEPT_BY_FIELD_NUMBER: _ClassVar[int]
    CONFIRMED_FIELD_NUMBER: _ClassVar[int]
    STANDBY_FIELD_NUMBER: _ClassVar[int]
    call: int
    start: Task
    step: Step
    cancel: Cancel
    context: bytes
    accept_by: int
    confirmed: bool
    standby: bool
    def __init__(self, call: _Optional[int] = ..., start: _Optional[_Union[Task, _Mapping]] = ..., step: _Optional[_Union[Step, _Mapping]] = ..., cancel: _Optional[_Union[Cancel, _Mapping]] = ..., context: _Optional[bytes] = ..., accept_by: _Optional[int] = ..., confirmed: _Optional[bool] = ..., standby: _Optional[bool] = ...) -> None: ...

class Accepted(_message.Message):
    __slots__ = ("worker",)
    WORKER_FIELD_NUMBER: _ClassVar[int]
    worker: str
    def __init__(self, worker: _Optional[str] = ...) -> None: ...

class Rejected(_message.Message):
    __slots__ = ("reason", "transient", "full")
    REASON_FIELD_NUMBER: _ClassVar[int]
    TRANSIENT_FIELD_NUMBER: _ClassVar[int]
    FULL_FIELD_NUMBER: _ClassVar[int]
    reason: str
    transient: bool
    full: bool
    def __init__(self, reason: _Optional[str] = ..., transient: _Optional[bool] = ..., full: _Optional[bool] = ...) -> None: ...

class Stopped(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Cancelled(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Response(_message.Message):
    __slots__ = ("call", "accepted", "rejected", "value", "error", "stopped", "cancelled", "log", "context", "confirm", "late", "buffers", "missing")
    CALL_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    STOPPED_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    CONFIRM_FIELD_NUMBER: _ClassVar[int]
    LATE_FIELD_NUMBER: _ClassVar[int]
    BUFFERS_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    call: int
    accepted: Accepted
    rejected: Rejected
    value: bytes
    error: bytes
    stopped: Stopped
    cancelled: Cancelled
    log: LogRecord
    context: bytes
    confirm: bool
    late: bool
    buffers: _containers.RepeatedCompositeFieldContainer[Buffer]
    missing: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, call: _Optional[int] = ..., accepted: _Optional[_Union[Accepted, _Mapping]] = ..., rejected: _Optional[_Union[Rejected, _Mapping]] = ..., value: _Optional[bytes] = ..., error: _Optional[bytes] = ..., stopped: _Optional[_Union[Stopped, _Mapping]] = ..., cancelled: _Optional[_Union[Cancelled, _Mapping]] = ..., log: _Optional[_Union[LogRecord, _Mapping]] = ..., context: _Optional[bytes] = ..., confirm: _Optional[bool] = ..., late: _Optional[bool] = ..., buffers: _Optional[_Iterable[_Union[Buffer, _Mapping]]] = ..., missing: _Optional[_Iterable[bytes]] = ...) -> None: ...

class LogRecord(_message.Message):
    __slots__ = ("logger", "level", "message", "created", "exception", "pathname", "lineno", "function", "thread", "process", "routine", "task_id", "worker", "host", "dropped")
    LOGGER_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    EXCEPTION_FIELD_NUMBER: _ClassVar[int]
    PATHNAME_FIELD_NUMBER: _ClassVar[int]
    LINENO_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    THREAD_FIELD_NUMBER: _ClassVar[int]
    PROCESS_FIELD_NUMBER: _ClassVar[int]
    ROUTINE_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    logger: str
    level: int
    message: str
    created: float
    exception: str
    pathname: str
    lineno: int
    function: str
    thread: str
    process: int
    routine: str
    task_id: str
    worker: str
    host: str
    dropped: int
    def __init__(self, logger: _Optional[str] = ..., level: _Optional[int] = ..., message: _Optional[str] = ..., created: _Optional[float] = ..., exception: _Optional[str] = ..., pathname: _Optional[str] = ..., lineno: _Optional[int] = ..., function: _Optional[str] = ..., thread: _Optional[str] = ..., process: _Optional[int] = ..., routine: _Optional[str] = ..., task_id: _Optional[str] = ..., worker: _Optional[str] = ..., host: _Optional[str] = ..., dropped: _Optional[int] = ...) -> None: ...
