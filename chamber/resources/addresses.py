"""Which addresses the link checker may connect to, and the network backend that enforces it on
every connection it opens (so on every redirect hop, and against DNS rebinding)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable, Iterable
from typing import Any

import httpcore

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# NAT64 (RFC 6052): the last 32 bits are an IPv4 address, so they are judged as one.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class Unreachable(Exception):
    """No usable answer; the message is what staff read."""


class RefusedAddress(Unreachable):
    pass


# --- which addresses may be asked -----------------------------------------------------------------


def is_public_address(address: IPAddress) -> bool:
    """False for loopback, private, link-local, multicast, reserved, unspecified and shared
    addresses, IPv4 or IPv6, including IPv4 carried inside IPv6 (mapped, 6to4, Teredo, NAT64)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if address.teredo:
            embedded = address.teredo[1]
        if address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and not is_public_address(embedded):
            return False
        if address.is_site_local:
            return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def _describe_refusal(address: IPAddress) -> str:
    kind = (
        "loopback"
        if address.is_loopback
        else "link-local"
        if address.is_link_local
        else "multicast"
        if address.is_multicast
        else "unspecified"
        if address.is_unspecified
        else "private or reserved"
    )
    return f"refused address: {address} is {kind}, not a public address"


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Every new connection goes through here: the host is resolved once, every address it
    resolves to is judged, and the connection is made to a judged address. So each redirect hop
    is checked, and a name cannot resolve to a public address for the check and a private one
    for the connection (DNS rebinding)."""

    def __init__(self, address_allowed: Callable[[IPAddress], bool]):
        self.address_allowed = address_allowed
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await resolve(host, port)
        for address in addresses:
            if not self.address_allowed(address):
                raise RefusedAddress(_describe_refusal(address))
        last_error: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as error:
                last_error = error
        raise last_error or Unreachable("no address to connect to")

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise RefusedAddress("refused address: a local socket")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


async def resolve(host: str, port: int) -> list[IPAddress]:
    host = host.strip("[]")
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise Unreachable(f"address not found: {host}") from error
    addresses: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])  # drop an IPv6 zone
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise Unreachable(f"address not found: {host}")
    return addresses
