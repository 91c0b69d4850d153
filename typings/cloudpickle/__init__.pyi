from collections.abc import Callable
from pickle import PickleBuffer
from pickle import load as load
from pickle import loads as loads

def dumps(
    obj: object,
    protocol: int | None = None,
    buffer_callback: Callable[[PickleBuffer], object] | None = None,
) -> bytes: ...
