"""Download a file from a list of mirrors, verified by its published digest."""

from __future__ import annotations

import hashlib
import http.client
import os
import string
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from cnnumpy.data._files import temporary_sibling
from cnnumpy.validation import check_callable, check_path, check_real, check_str

__all__ = ["DownloadError", "download"]

CHUNK_SIZE = 1 << 16
# A download is refused past this size (the largest known file is 26 MB): a
# wrong or hostile server cannot fill the disk before the digest is checked.
MAX_DOWNLOAD_BYTES = 2**30
# Hex digits of each digest accepted: SHA-256, or MD5 where that is all a data
# set's page publishes (CIFAR-10). MD5 no longer resists forged collisions, but
# matching a fixed, published file's digest still takes a second preimage.
_DIGITS = {"sha256": 64, "md5": 32}
_LABELS = {"sha256": "SHA-256", "md5": "MD5"}

Progress = Callable[[int, "int | None"], object]


class DownloadError(OSError):
    """No mirror delivered the file with the expected digest.

    The message names the file, each URL tried and why it failed;
    ``failures`` holds the same as ``(url, reason)`` pairs.
    """

    def __init__(self, message: str, *, failures: Sequence[tuple[str, str]] = ()):
        super().__init__(message)
        self.failures = tuple(failures)


def download(
    urls: str | Sequence[str],
    dest: str | os.PathLike[str],
    sha256: str | None = None,
    *,
    md5: str | None = None,
    progress: Progress | None = None,
    timeout: float = 30.0,
) -> Path:
    """Download ``dest`` from the first mirror that serves it with the digests given.

    Each attempt streams into a hidden temporary file in ``dest``'s folder while
    hashing it, and only matching digests rename it onto ``dest``
    (``os.replace``, atomic). A failed attempt, an error or a KeyboardInterrupt
    deletes the temporary file: ``dest`` is either complete and verified, or
    left as it was.

    Parameters
    ----------
    urls : str or sequence of str
        One URL, or mirror URLs tried in order until one succeeds.
    dest : str or path-like
        The file to create (or replace); missing folders are created.
    sha256 : str, optional
        The expected SHA-256 digest, 64 hexadecimal digits (any case).
    md5 : str, optional
        The expected MD5 digest, 32 hexadecimal digits, for files whose source
        publishes no other (CIFAR-10). At least one of ``sha256`` and ``md5``
        must be given; each given is checked.
    progress : callable, optional
        ``progress(done_bytes, total_bytes)``, called with ``done_bytes=0`` when
        a mirror answers, then after each chunk; ``total_bytes`` is the
        Content-Length, or None if the server does not send it. Each mirror
        tried starts again from 0.
    timeout : float
        Seconds to wait for a connection or for data before a mirror fails.

    Returns
    -------
    pathlib.Path
        ``dest``.

    Raises
    ------
    DownloadError
        If every mirror failed (unreachable, HTTP error, incomplete data, a
        digest mismatch); the message names the file and each URL with its reason.
    TypeError, ValueError
        If an argument is malformed.
    """
    urls = _check_urls(urls)
    check_path(dest, "dest")
    digests = _check_digests(sha256=sha256, md5=md5)
    if progress is not None:
        check_callable(progress, "progress")
    timeout = check_real(timeout, "timeout", above=0)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in urls:
        reason = _fetch(url, dest, digests, progress, timeout)
        if reason is None:
            return dest
        failures.append((url, reason))
    lines = "".join(f"\n  {url}: {reason}" for url, reason in failures)
    raise DownloadError(
        f"could not download {dest.name} to {dest}:{lines}", failures=failures
    )


def _check_urls(urls: object) -> tuple[str, ...]:
    if isinstance(urls, str):
        urls = (urls,)
    if not isinstance(urls, Sequence) or not all(isinstance(url, str) for url in urls):
        raise TypeError(
            f"`urls` must be a URL or a non-empty sequence of URLs, got {urls!r}"
        )
    if not urls or not all(urls):
        raise ValueError(
            f"`urls` must be a URL or a non-empty sequence of URLs, got {urls!r}"
        )
    return tuple(urls)


def _check_digests(**given: object) -> dict[str, str]:
    """The digests given, by algorithm name, as lowercase hex."""
    digests = {}
    for name, value in given.items():
        if value is None:
            continue
        digits = _DIGITS[name]
        hex_value = check_str(value, name).lower()
        if len(hex_value) != digits or not set(hex_value) <= set(string.hexdigits):
            raise ValueError(
                f"`{name}` must be {digits} hexadecimal digits, got {value!r}"
            )
        digests[name] = hex_value
    if not digests:
        raise ValueError("`sha256` or `md5` must be given, got neither")
    return digests


def _fetch(
    url: str,
    dest: Path,
    digests: dict[str, str],
    progress: Progress | None,
    timeout: float,
) -> str | None:
    """Try one mirror: None on success, else why it failed."""
    request = urllib.request.Request(url, headers={"User-Agent": "cnnumpy"})
    with temporary_sibling(dest) as (f, tmp):
        # An integrity check against a published file, not a security use (FIPS).
        hashes = {n: hashlib.new(n, usedforsecurity=False) for n in digests}
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                total = _content_length(response)
                done = 0
                if progress is not None:
                    progress(done, total)
                if total is not None and total > MAX_DOWNLOAD_BYTES:
                    return _too_large(total)
                while chunk := response.read(CHUNK_SIZE):
                    f.write(chunk)
                    for h in hashes.values():
                        h.update(chunk)
                    done += len(chunk)
                    if done > MAX_DOWNLOAD_BYTES:
                        return _too_large(done)
                    if progress is not None:
                        progress(done, total)
        except urllib.error.HTTPError as err:
            return f"HTTP {err.code} {err.reason}"
        except urllib.error.URLError as err:
            return str(err.reason)
        except TimeoutError:
            return f"no answer within {timeout:g} s"
        except (OSError, http.client.HTTPException, ValueError) as err:
            # ValueError: a malformed URL; HTTPException: a broken response.
            return f"{type(err).__name__}: {err}"
        f.close()
        if total is not None and done != total:
            return f"incomplete: got {done} of {total} bytes"
        for name, expected in digests.items():
            got = hashes[name].hexdigest()
            if got != expected:
                return f"{_LABELS[name]} mismatch: expected {expected}, got {got}"
        os.replace(tmp, dest)
    return None


def _too_large(size: int) -> str:
    return f"{size:,} bytes or more, over the {MAX_DOWNLOAD_BYTES:,} allowed"


def _content_length(response: object) -> int | None:
    value = getattr(response, "headers", {}).get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
