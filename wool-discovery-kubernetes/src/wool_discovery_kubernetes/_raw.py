"""Raw responses of the API client, for reading the JSON and streams ourselves."""

from __future__ import annotations

from collections.abc import Awaitable

import aiohttp


async def raw(call: Awaitable[object]) -> aiohttp.ClientResponse:
    """The HTTP response of an API call made with ``_preload_content=False`` (the
    client's annotations name the decoded model, which such a call does not return)."""
    response = await call
    if not isinstance(response, aiohttp.ClientResponse):
        raise TypeError(f"expected an aiohttp response, got {type(response).__name__}")
    return response
