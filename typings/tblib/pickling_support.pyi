from collections.abc import Callable
from types import FrameType
from typing import Any

def install(
    *exc_classes_or_instances: type[BaseException] | BaseException,
    get_locals: Callable[[FrameType], dict[str, Any]] | None = None,
) -> type[BaseException] | None: ...
