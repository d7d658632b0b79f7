"""The link checker's engine: asks many web servers at once whether a link still works.

Pure (no database, no Flask): give it URLs, get back one `LinkResult` each. It asks with HEAD and
asks again with GET when HEAD gets an error answer, follows redirects one hop at a time so each is
recorded, bounds every request by a total time limit, caps requests overall and per host, never
reads a body, and refuses to connect to private addresses unless told it may.
"""

from __future__ import annotations

import asyncio
import errno
import queue
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from chamber.core.urls import url_fault
from chamber.resources.addresses import (
    GuardedBackend,
    IPAddress,
    Unreachable,
    is_public_address,
)

OK = "ok"
REDIRECTED = "redirected"
BROKEN = "broken"
UNREACHABLE = "unreachable"

REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
PERMANENT_CODES = frozenset({301, 308})
MAX_HOPS = 10
DEFAULT_USER_AGENT = "ChamberLinkChecker/1.0"
ERROR_LENGTH = 500  # what LinkCheck.error holds


@dataclass(frozen=True)
class Hop:
    """One redirect: the status that sent us on, and where to."""

    status: int
    location: str

    def __str__(self) -> str:
        return f"{self.status} {self.location}"


@dataclass(frozen=True)
class LinkResult:
    url: str
    state: str  # ok, redirected, broken or unreachable (the values of models.LinkState)
    status_code: int | None = None
    final_url: str | None = None
    hops: tuple[Hop, ...] = ()
    error: str | None = None
    elapsed_ms: int = 0
    # The failure was this machine's network, not the link: the name could not be resolved, or
    # there was no route to the network or host. When every link of a run fails so, the checker
    # is offline and the run keeps the links' states (`resources.health`).
    network_failure: bool = False

    @property
    def permanent_redirect(self) -> bool:
        """True when every hop was permanent (301, 308): the new address may replace the old."""
        return bool(self.hops) and all(hop.status in PERMANENT_CODES for hop in self.hops)

    @property
    def redirects_text(self) -> str:
        return "\n".join(str(hop) for hop in self.hops)

    @property
    def is_problem(self) -> bool:
        return self.state != OK


# --- checking -------------------------------------------------------------------------------------


def host_of(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


URL_FAULTS = {
    "hidden": "not a web address: it contains spaces or control characters",
    "malformed": "not a web address",
    "scheme": "only http and https addresses are checked",
    "host": "not a web address: no host",
    "credentials": "refused: the address carries a user name or password",
}


def web_address_problem(url: str) -> str | None:
    """Why `url` cannot be checked, or None."""
    fault = url_fault(url)
    return URL_FAULTS[fault] if fault else None


class LinkChecker:
    """Checks links with a shared connection pool; one instance per run of `check_all`."""

    def __init__(
        self,
        *,
        concurrency: int = 20,
        per_host: int = 2,
        timeout: float = 10.0,
        allow_private: bool = False,
        user_agent: str = DEFAULT_USER_AGENT,
        address_allowed: Callable[[IPAddress], bool] | None = None,
        max_hops: int = MAX_HOPS,
    ):
        if concurrency < 1 or per_host < 1 or timeout <= 0:
            raise ValueError("concurrency and per_host must be at least 1, timeout above 0")
        self.concurrency = concurrency
        self.per_host = per_host
        self.timeout = timeout
        self.max_hops = max_hops
        self.user_agent = user_agent
        if address_allowed is None:
            address_allowed = (lambda address: True) if allow_private else is_public_address
        self.address_allowed = address_allowed
        self._host_slots: dict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(self.per_host)
        )

    def _client(self) -> httpx.AsyncClient:
        transport = httpx.AsyncHTTPTransport(retries=0)
        # httpx has no public way to pass a network backend, so the transport gets a pool built
        # with httpcore's public API around the guarded backend; tests prove it is the one used.
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=self.concurrency * 2,
            max_keepalive_connections=self.concurrency,
            keepalive_expiry=5.0,
            network_backend=GuardedBackend(self.address_allowed),
        )
        return httpx.AsyncClient(
            transport=transport,
            trust_env=False,  # no proxy from the environment: it would bypass the address guard
            follow_redirects=False,
            timeout=httpx.Timeout(self.timeout),
            headers={
                "User-Agent": self.user_agent,
                "Accept": "text/html,application/xhtml+xml,*/*;q=0.8",
                "Accept-Encoding": "identity",
            },
        )

    async def check_all(
        self,
        urls: Iterable[str],
        *,
        on_result: Callable[[LinkResult], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> list[LinkResult]:
        """Check each distinct URL once; results in the order the URLs were given."""
        distinct = list(dict.fromkeys(urls))
        pending: asyncio.Queue[str] = asyncio.Queue()
        for url in _interleave_hosts(distinct):
            pending.put_nowait(url)
        results: dict[str, LinkResult] = {}

        async with self._client() as client:

            async def work() -> None:
                while not should_stop():
                    try:
                        url = pending.get_nowait()
                    except asyncio.QueueEmpty:
                        return
                    try:
                        result = await self.check_one(client, url)
                    except Exception as error:  # one odd answer must not end the whole run
                        message = f"checker error: {type(error).__name__}: {error}"
                        result = LinkResult(url, UNREACHABLE, error=message[:ERROR_LENGTH])
                    results[url] = result
                    if on_result is not None:
                        on_result(result)

            workers = min(self.concurrency, len(distinct)) or 1
            await asyncio.gather(*(work() for _ in range(workers)))
        return [results[url] for url in distinct if url in results]

    async def check_one(self, client: httpx.AsyncClient, url: str) -> LinkResult:
        hops: list[Hop] = []
        seen = {url}
        current = url
        spent = 0.0

        def done(
            state: str,
            *,
            status: int | None = None,
            error: str | None = None,
            network_failure: bool = False,
        ) -> LinkResult:
            return LinkResult(
                url=url,
                state=state,
                status_code=status,
                final_url=current,
                hops=tuple(hops),
                error=error[:ERROR_LENGTH] if error else None,
                elapsed_ms=round(spent * 1000),
                network_failure=network_failure,
            )

        while True:
            problem = web_address_problem(current)
            if problem:
                return done(UNREACHABLE, error=problem)
            async with self._host_slots[host_of(current)]:
                started = time.perf_counter()  # waiting for a slot is not the link's time
                try:
                    status, location = await self._ask(client, current)
                except Unreachable as error:
                    spent += time.perf_counter() - started
                    return done(
                        UNREACHABLE, error=str(error), network_failure=is_network_failure(error)
                    )
                spent += time.perf_counter() - started
            if status in REDIRECT_CODES and location:
                target = urljoin(current, location.strip())
                hops.append(Hop(status, target))
                if target in seen:
                    current = target
                    return done(UNREACHABLE, status=status, error="redirect loop")
                if len(hops) > self.max_hops:
                    current = target
                    return done(UNREACHABLE, status=status, error="too many redirects")
                seen.add(target)
                current = target
                continue
            if 200 <= status < 300:
                return done(REDIRECTED if hops else OK, status=status)
            error = "redirect without a Location" if status in REDIRECT_CODES else None
            return done(BROKEN, status=status, error=error)

    async def _ask(self, client: httpx.AsyncClient, url: str) -> tuple[int, str | None]:
        """HEAD, then GET if HEAD got an error answer or a broken reply. Many servers answer HEAD
        badly (405 or 501 as they should, but also 403 from firewalls, 404 from some
        applications, a dropped connection), while a GET is what a reader's browser sends: when
        the two disagree, GET decides. A time-out is not retried, so a dead host costs one limit."""
        try:
            status, location = await self._request(client, "HEAD", url)
        except httpx.RemoteProtocolError:
            status, location = 0, None
        if status >= 400 or status == 0:
            try:
                status, location = await self._request(client, "GET", url)
            except Unreachable:
                if status == 0:
                    raise
                # HEAD's error answer stands when GET gets none.
        return status, location

    async def _request(self, client: httpx.AsyncClient, method: str, url: str):
        try:
            async with asyncio.timeout(self.timeout):  # connect, send and headers, in total
                request = client.build_request(method, url)
                response = await client.send(request, stream=True)
                # Close without reading the body: the status and headers are the answer.
                await response.aclose()
        except TimeoutError as error:
            raise Unreachable(f"no answer within {self.timeout:g} s") from error
        except httpx.TimeoutException as error:
            raise Unreachable(f"no answer within {self.timeout:g} s") from error
        except httpx.RemoteProtocolError:
            if method == "HEAD":
                raise
            raise Unreachable("the server closed the connection without a valid answer") from None
        except httpx.ConnectError as error:
            raise Unreachable(f"could not connect: {error or 'connection refused'}") from error
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as error:
            raise Unreachable(f"not a web address: {error}") from error
        except httpx.HTTPError as error:
            raise Unreachable(f"{type(error).__name__}: {error}") from error
        except OSError as error:
            raise Unreachable(f"network error: {error}") from error
        return response.status_code, response.headers.get("location")


NETWORK_ERRNOS = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN})


def is_network_failure(error: BaseException) -> bool:
    """Whether `error` came from this machine's network rather than from the link: a name that
    could not be resolved, or no route to the network or host (what a machine without internet
    gets for every link). A refused connection, a time-out or an error answer is the link's own."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, socket.gaierror):
            return True
        if isinstance(current, OSError) and current.errno in NETWORK_ERRNOS:
            return True
        current = current.__cause__ or current.__context__
    return False


def _interleave_hosts(urls: list[str]) -> list[str]:
    """Round-robin over hosts, so the first links taken are spread across hosts and the per-host
    cap does not leave workers waiting on one busy host while others sit idle."""
    by_host: dict[str, list[str]] = defaultdict(list)
    for url in urls:
        by_host[host_of(url)].append(url)
    columns = list(by_host.values())
    order = []
    for index in range(max((len(c) for c in columns), default=0)):
        order.extend(column[index] for column in columns if index < len(column))
    return order


# --- entry points ---------------------------------------------------------------------------------


def check_urls(
    urls: Iterable[str],
    *,
    concurrency: int = 20,
    per_host: int = 2,
    timeout: float = 10.0,
    allow_private: bool = False,
    user_agent: str = DEFAULT_USER_AGENT,
    on_result: Callable[[LinkResult], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    address_allowed: Callable[[IPAddress], bool] | None = None,
) -> list[LinkResult]:
    """Check every URL (each distinct one once) and return the results in the order given.

    Runs its own event loop, so call it from ordinary code. `on_result` is called with each
    result as it comes, on the same thread; `should_stop` is asked before each link is started.
    """
    checker = LinkChecker(
        concurrency=concurrency,
        per_host=per_host,
        timeout=timeout,
        allow_private=allow_private,
        user_agent=user_agent,
        address_allowed=address_allowed,
    )
    return asyncio.run(checker.check_all(urls, on_result=on_result, should_stop=should_stop))


_FINISHED = object()


def iter_results(
    urls: Iterable[str], *, should_stop: Callable[[], bool] = lambda: False, **options
) -> Iterator[LinkResult]:
    """Results as they come, in completion order, with the checking on a thread of its own: the
    caller can write each to the database without holding up the requests in flight."""
    results: queue.Queue = queue.Queue()
    closed = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            check_urls(
                urls,
                on_result=results.put,
                should_stop=lambda: closed.is_set() or should_stop(),
                **options,
            )
        except BaseException as error:  # handed to the caller's thread below
            failure.append(error)
        finally:
            results.put(_FINISHED)

    thread = threading.Thread(target=run, name="link-checker", daemon=True)
    thread.start()
    try:
        while (item := results.get()) is not _FINISHED:
            yield item
    finally:
        closed.set()  # a caller that stops early: no new links are started
        thread.join()
    if failure:
        raise failure[0]
