"""A client for SSB Statbank's PxWebApi v2 (https://data.ssb.no/api/pxwebapi/v2): table search, metadata and
data queries, in JSON-stat 2.0.

- Selections per variable as the API takes them: codes, wildcards (`*` any run, `?` one character), `top(n)`,
  `top(n,offset)`, `bottom(n)`, `from(code)`, `to(code)`, `range(a,b)`. They are resolved against the table's
  metadata here, so a query over the cell limit is split into pages that each stay under it (the API refuses
  the whole query otherwise) and put together again.
- Politeness: at most the server's calls per time window (from `/config`), HTTP 429 waits for `Retry-After`
  (seconds or a date) and retries, server errors and dropped connections retry with growing waits.
- Every successful answer is cached on disk under a hash of method, URL and body, so a rerun asks nothing.
- The network is one function (`Transport`); tests pass a fake one with recorded responses.

Only the standard library talks to the network: no new runtime dependency.
"""

from __future__ import annotations

import email.utils
import fnmatch
import hashlib
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from levekar.io import write_bytes
from levekar.sources.jsonstat import Dataset, parse_dataset

SSB = "https://data.ssb.no/api/pxwebapi/v2"
# SSB's published limits, used when /config cannot be read
DEFAULT_MAX_CELLS = 800_000
DEFAULT_CALLS, DEFAULT_WINDOW = 30, 10.0


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


Transport = Callable[[str, str, bytes | None, dict[str, str]], Response]


def urllib_transport(timeout: float = 60.0) -> Transport:
    """The real network, through urllib; HTTP errors come back as responses, not exceptions."""

    def send(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> Response:
        req = urllib.request.Request(url, data=body, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return Response(r.status, {k.lower(): v for k, v in r.headers.items()}, r.read())
        except urllib.error.HTTPError as e:
            return Response(e.code, {k.lower(): v for k, v in (e.headers or {}).items()}, e.read() or b"")

    return send


class PxWebError(RuntimeError):
    """The API refused a request (the message has the status, URL and the server's own words)."""


# --- selections ------------------------------------------------------------------------------------------

_CALL = re.compile(r"^(top|bottom|from|to|range)\((.*)\)$", re.IGNORECASE)


def split_codes(text: str) -> list[str]:
    """`a,b,top(3),range(2019,2021)` → items; commas inside parentheses belong to the expression."""
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        cur += ch
    out.append(cur.strip())
    return [c for c in out if c]


def resolve(codes: tuple[str, ...] | list[str], expressions: list[str], variable: str = "variable") -> list[str]:
    """The codes (in the table's order) an API selection picks: plain codes, wildcards and the selection
    expressions. An expression that picks nothing, or an unknown code, raises a ValueError naming both."""
    codes = list(codes)
    pos = {c: i for i, c in enumerate(codes)}
    picked: set[int] = set()
    for e in expressions:
        m = _CALL.match(e.strip())
        if m:
            fn, args = m.group(1).lower(), [a.strip() for a in m.group(2).split(",")]
            try:
                if fn in ("top", "bottom"):
                    n, off = int(args[0]), int(args[1]) if len(args) > 1 else 0
                    # top: the last codes (the newest periods), bottom: the first
                    sel = range(len(codes) - off - n, len(codes) - off) if fn == "top" else range(off, off + n)
                    hit = {i for i in sel if 0 <= i < len(codes)}
                elif fn == "from":
                    hit = set(range(pos[args[0]], len(codes)))
                elif fn == "to":
                    hit = set(range(pos[args[0]] + 1))
                else:
                    hit = set(range(pos[args[0]], pos[args[1]] + 1))
            except (KeyError, IndexError, ValueError) as err:
                raise ValueError(f"{variable}: {e!r} does not fit the codes (e.g. {', '.join(codes[:4])})") from err
        elif any(ch in e for ch in "*?"):
            hit = {pos[c] for c in fnmatch.filter(codes, e)} if e != "*" else set(range(len(codes)))
        elif e in pos:
            hit = {pos[e]}
        else:
            raise ValueError(
                f"{variable}: no code {e!r} (codes: {', '.join(codes[:6])}{', …' if len(codes) > 6 else ''})"
            )
        if not hit:
            raise ValueError(f"{variable}: {e!r} selects no code")
        picked |= hit
    return [codes[i] for i in sorted(picked)]


def pages(selection: dict[str, list[str]], max_cells: int) -> list[dict[str, list[str]]]:
    """Split a selection into queries of at most `max_cells` cells each, cutting the longest code lists
    first; together they cover every cell exactly once."""
    chunk = {v: len(c) for v, c in selection.items()}
    while int(np.prod(list(chunk.values()) or [1])) > max_cells:
        v = max((v for v in chunk if chunk[v] > 1), key=lambda v: chunk[v], default=None)
        if v is None:
            break
        others = int(np.prod([n for k, n in chunk.items() if k != v] or [1]))
        chunk[v] = max(1, min(chunk[v] - 1, max_cells // others))
    parts: list[dict[str, list[str]]] = [{}]
    for v, codes in selection.items():
        step = chunk[v]
        parts = [{**p, v: codes[i : i + step]} for p in parts for i in range(0, len(codes), step)]
    return parts


# --- the client ------------------------------------------------------------------------------------------


def default_cache() -> Path:
    return Path(os.environ.get("LEVEKAR_CACHE", Path.home() / ".cache" / "levekar")) / "pxweb"


@dataclass
class PxWebClient:
    base_url: str = SSB
    lang: str = "no"
    cache_dir: Path | None = field(default_factory=default_cache)
    transport: Transport = field(default_factory=urllib_transport)
    max_retries: int = 5
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    max_cells: int | None = None  # default: the server's, from /config
    calls: list[float] = field(default_factory=list)  # times of the recent calls (the rate limit's window)
    _config: dict | None = None

    # -- transport with throttle, retry and cache --

    def _throttle(self, limit: int, window: float) -> None:
        now = self.clock()
        self.calls[:] = [t for t in self.calls if now - t < window]
        if len(self.calls) >= limit:
            self.sleep(window - (now - self.calls[0]))
        self.calls.append(self.clock())

    def _cache_path(self, method: str, url: str, body: bytes | None) -> Path | None:
        if self.cache_dir is None:
            return None
        key = hashlib.sha256(b"\0".join([method.encode(), url.encode(), body or b""])).hexdigest()
        return Path(self.cache_dir) / key[:2] / f"{key}.json"

    def request(self, method: str, path: str, params: dict | None = None, body: dict | None = None) -> bytes:
        """One API call's body; from the cache when it has it."""
        query = urllib.parse.urlencode({**(params or {}), "lang": self.lang}, safe="[](),*?")
        url = f"{self.base_url.rstrip('/')}/{path.lstrip('/')}?{query}"
        data = json.dumps(body, sort_keys=True, ensure_ascii=False).encode() if body is not None else None
        cached = self._cache_path(method, url, data)
        if cached is not None and cached.is_file():
            return cached.read_bytes()
        headers = {"Accept": "application/json", "User-Agent": "levekar"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        limit, window = (DEFAULT_CALLS, DEFAULT_WINDOW) if path == "config" else self.limits()[1:]
        wait = 1.0
        for attempt in range(self.max_retries + 1):
            self._throttle(limit, window)
            try:
                r = self.transport(method, url, data, headers)
            except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
                if attempt == self.max_retries:
                    raise PxWebError(f"{method} {url}: no answer after {attempt + 1} tries ({e})") from e
                self.sleep(wait)
                wait *= 2
                continue
            if r.status == 200:
                if cached is not None:
                    cached.parent.mkdir(parents=True, exist_ok=True)
                    write_bytes(r.body, cached)
                return r.body
            if (r.status == 429 or r.status >= 500) and attempt < self.max_retries:
                self.sleep(_retry_after(r.headers.get("retry-after"), wait))
                wait *= 2
                continue
            text = r.body.decode("utf-8", errors="replace")[:300]
            raise PxWebError(f"{method} {url}: HTTP {r.status}: {text}")
        raise AssertionError("unreachable")

    def _json(self, method: str, path: str, params: dict | None = None, body: dict | None = None) -> dict:
        raw = self.request(method, path, params, body)
        try:
            return json.loads(raw)
        except json.JSONDecodeError as e:
            raise PxWebError(f"{path}: the answer is not JSON: {raw[:80]!r}") from e

    # -- the API --

    def limits(self) -> tuple[int, int, float]:
        """(max cells per query, calls per time window, window in seconds) from /config, or SSB's defaults."""
        if self._config is None:
            try:
                self._config = self._json("GET", "config")
            except PxWebError:
                self._config = {}
        c = self._config
        cells = self.max_cells or int(c.get("maxDataCells") or DEFAULT_MAX_CELLS)
        return cells, int(c.get("maxCallsPerTimeWindow") or DEFAULT_CALLS), float(c.get("timeWindow") or DEFAULT_WINDOW)

    def search(self, query: str, page_size: int = 100, max_pages: int = 20) -> pd.DataFrame:
        """Tables matching `query`: id, label, first and last period, updated, discontinued (all pages)."""
        rows, page = [], 1
        while page <= max_pages:
            r = self._json("GET", "tables", {"query": query, "pageSize": page_size, "pageNumber": page})
            rows += r.get("tables") or []
            total = int((r.get("page") or {}).get("totalPages") or 1)
            if page >= total:
                break
            page += 1
        cols = ["id", "label", "firstPeriod", "lastPeriod", "updated", "discontinued"]
        return pd.DataFrame([{c: t.get(c) for c in cols} for t in rows], columns=cols)

    def metadata(self, table: str) -> Dataset:
        """The table's variables and every code (JSON-stat 2.0 without values)."""
        raw = self.request("GET", f"tables/{table}/metadata", {"outputFormat": "json-stat2"})
        return parse_dataset(json.loads(raw), f"table {table} metadata", values=False)

    def selection(self, table: str, select: dict[str, list[str]]) -> dict[str, list[str]]:
        """Concrete codes per variable: the given expressions resolved; variables not given are left out when
        the table allows it (elimination), else every code is taken."""
        meta = self.metadata(table)
        known = {d.id: d for d in meta.dimensions}
        unknown = [v for v in select if v not in known]
        if unknown:
            raise ValueError(f"table {table}: no variable {unknown[0]!r}; it has {', '.join(known)}")
        out = {}
        for d in meta.dimensions:
            if d.id in select:
                out[d.id] = resolve(d.codes, select[d.id], d.id)
            elif not d.extension.get("elimination", False):
                out[d.id] = list(d.codes)
        return out

    def data(self, table: str, select: dict[str, list[str]], codelists: dict[str, str] | None = None) -> pd.DataFrame:
        """A tidy frame of the selected cells (one column per variable with codes, `<var>_label`, `value`,
        `status`), fetched in pages under the cell limit."""
        codelists = codelists or {}
        if codelists:  # grouped values (a codelist) are known to the server only: no local resolution
            parts = [{v: list(e) for v, e in select.items()}]
        else:
            parts = pages(self.selection(table, select), self.limits()[0])
        frames = []
        for part in parts:
            body = {
                "selection": [
                    {"variableCode": v, "valueCodes": codes, **({"codelist": codelists[v]} if v in codelists else {})}
                    for v, codes in part.items()
                ]
            }
            raw = self.request("POST", f"tables/{table}/data", {"outputFormat": "json-stat2"}, body)
            frames.append(parse_dataset(json.loads(raw), f"table {table} data").to_frame(labels=True))
        out = pd.concat(frames, ignore_index=True)
        keys = [c for c in out.columns if c not in ("value", "status") and not c.endswith("_label")]
        return out.sort_values(keys, kind="stable").reset_index(drop=True)


def _retry_after(value: str | None, fallback: float) -> float:
    """Seconds to wait from a Retry-After header: a number of seconds or an HTTP date."""
    if not value:
        return fallback
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time()) if when else fallback


def parse_select(items: list[str]) -> dict[str, list[str]]:
    """`VAR=CODES` options (codes comma-separated, expressions allowed) → selection."""
    out: dict[str, list[str]] = {}
    for item in items:
        var, sep, codes = item.partition("=")
        if not sep or not var.strip() or not codes.strip():
            raise ValueError(f"--select {item!r}: write VARIABLE=CODES, e.g. Region=0301 or Tid=top(3)")
        out.setdefault(var.strip(), []).extend(split_codes(codes))
    return out
