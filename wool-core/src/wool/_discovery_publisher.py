"""A base class for discovery publishers: the context manager and publish()'s checks."""

from __future__ import annotations

from types import TracebackType
from typing import Generic, Self, TypeVar

from wool._metadata import DiscoveryEvent

Opened = TypeVar("Opened")


class DiscoveryPublisher(Generic[Opened]):
    """Base of a discovery publisher: ``async with publisher: await publisher.publish(e)``.

    A subclass says how to open what it publishes through (a connection, a responder, an
    attachment: ``Opened``) in :meth:`_open`, how to apply one event with it in
    :meth:`_apply`, and how to withdraw and release it in :meth:`_close`. This class
    does the rest, with the same errors for every publisher:

    - entering a publisher that is already entered raises ``RuntimeError``;
    - ``publish()`` of something that is not a :class:`wool.DiscoveryEvent` raises
      ``TypeError``, and ``publish()`` outside ``async with`` raises ``RuntimeError``;
    - leaving one that is not entered does nothing; a publisher can be entered again
      after it is left.

    :meth:`_describe` names the publisher in those errors (``"this LanPublisher"``).
    """

    _opened: Opened | None = None

    @property
    def entered(self) -> bool:
        """Whether the publisher is entered (``publish()`` may be called)."""
        return self._opened is not None

    async def __aenter__(self) -> Self:
        if self._opened is not None:
            raise RuntimeError(f"{self._describe('this')} is already entered")
        self._opened = await self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        opened, self._opened = self._opened, None
        if opened is not None:
            await self._close(opened)

    async def publish(self, event: DiscoveryEvent) -> None:
        """Make ``event`` (``worker-added``, ``-updated`` or ``-dropped``) known to the
        publisher's subscribers."""
        if not isinstance(event, DiscoveryEvent):  # pyright: ignore[reportUnnecessaryIsInstance] (checks the plugin's argument at run time)
            raise TypeError(f"expected a wool.DiscoveryEvent, got {type(event).__name__}")
        opened = self._opened
        if opened is None:
            raise RuntimeError(f"{self._describe('the')} is not entered; use 'async with'")
        await self._apply(opened, event)

    async def _open(self) -> Opened:
        """Open what the publisher publishes through (on entering); raise to refuse."""
        raise NotImplementedError

    async def _apply(self, opened: Opened, event: DiscoveryEvent, /) -> None:
        """Publish one checked event through ``opened``."""
        raise NotImplementedError

    async def _close(self, opened: Opened, /) -> None:
        """Withdraw what is still published and release ``opened`` (on leaving, once per
        successful entering; ``publish()`` already refuses meanwhile)."""
        raise NotImplementedError

    def _describe(self, article: str, /) -> str:
        """The publisher as errors name it, after ``article`` ("this" or "the")."""
        return f"{article} {type(self).__name__}"
