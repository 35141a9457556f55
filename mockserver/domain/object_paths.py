"""Which bucket names and key prefixes an export destination may have.

m3ter's published API only bounds ``bucketName`` to 3-63 characters and says nothing about
``prefix``, so the bucket rules are the clouds' documented naming rules:

* S3 (AWS "general purpose bucket naming rules"): lowercase letters, digits, dots and
  hyphens; starts and ends with a letter or digit; no two dots in a row; not an IP address;
  not starting with ``xn--``, ``sthree-`` or ``amzn-s3-demo-``; not ending with
  ``-s3alias``, ``--ol-s3``, ``.mrap``, ``--x-s3`` or ``--table-s3``.
* GCS: the same characters plus underscores, the same first/last-character and IP rules;
  not starting with ``goog`` and not containing ``google`` or a look-alike (``g00gle``).
  Two dots in a row would be an empty DNS label, so they are refused too.

A prefix is a path inside the bucket: ``/``-separated segments, none empty, ``.`` or
``..``, with no backslash and no control character, and no leading ``/`` (one trailing
``/`` is allowed and means the same as none). These are also what keep the files the mock
writes for ``--export-dir`` inside that directory.

The patterns are the ones ``openapi/m3ter.yaml`` declares (a test keeps them equal), so
Connexion refuses a bad name before it reaches the mock; the functions below give the same
verdict with a reason. The patterns end with ``(?![\\s\\S])`` rather than ``$``: in Python
``$`` also matches before a trailing newline, in ECMAScript it does not. They start with a
negative lookahead on the length (repeating ``maxLength``) so that matching a long input
costs no more than matching a long-enough one.
"""

from __future__ import annotations

import re

from .errors import MockError

S3_RESERVED_STARTS = ("xn--", "sthree-", "amzn-s3-demo-")
S3_RESERVED_ENDS = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")

# Read as: at most 63 characters; no reserved start; no reserved end; not an IP address;
# a letter or digit, then characters each optionally preceded by one dot, then a letter or
# digit; the end of input.
S3_BUCKET_PATTERN = (
    r"^(?![\s\S]{64})(?!xn--|sthree-|amzn-s3-demo-)(?!.*(?:-s3alias|--ol-s3|\.mrap|--x-s3|--table-s3)$)"
    r"(?![0-9]{1,3}(?:\.[0-9]{1,3}){3}$)[a-z0-9](?:\.?[a-z0-9-])*\.?[a-z0-9](?![\s\S])")
GCS_BUCKET_PATTERN = (
    r"^(?![\s\S]{64})(?!goog)(?!.*g[o0][o0]gle)"
    r"(?![0-9]{1,3}(?:\.[0-9]{1,3}){3}$)[a-z0-9](?:\.?[a-z0-9_-])*\.?[a-z0-9](?![\s\S])")
# At most 1024 characters; segments that are not "." or ".." and hold no "/", backslash or
# control character, each followed by "/", then a last segment and an optional "/"; or nothing.
PREFIX_PATTERN = (
    r"^(?![\s\S]{1025})(?:(?:(?!\.\.?(?:/|(?![\s\S])))[^/\\\x00-\x1f\x7f-\x9f]+/)*"
    r"(?!\.\.?(?:/|(?![\s\S])))[^/\\\x00-\x1f\x7f-\x9f]+/?)?(?![\s\S])")

BUCKET_MIN, BUCKET_MAX = 3, 63
PREFIX_MAX = 1024

_IP = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_ALLOWED = {"S3": re.compile(r"[a-z0-9.-]*"), "GCS": re.compile(r"[a-z0-9._-]*")}
_LOOKS_LIKE_GOOGLE = re.compile(r"g[o0][o0]gle")


def shown(value: str, limit: int = 64) -> str:
    """The value for an error message, cut short: a message never echoes a long input."""
    return repr(value) if len(value) <= limit else repr(value[:limit]) + f"... ({len(value)} characters)"


def bucket_name_problem(name: str, destination_type: str) -> str | None:
    """Why ``name`` is not a bucket name for an S3 or GCS destination, or None."""
    if not BUCKET_MIN <= len(name) <= BUCKET_MAX:
        return f"must be {BUCKET_MIN} to {BUCKET_MAX} characters long"
    if not _ALLOWED[destination_type].fullmatch(name):
        kinds = "hyphens, dots and underscores" if destination_type == "GCS" else "hyphens and dots"
        return f"may hold only lowercase letters, digits, {kinds}"
    if not (name[0].isalnum() and name[-1].isalnum()):
        return "must start and end with a lowercase letter or a digit"
    if ".." in name:
        return "must not contain two dots in a row"
    if _IP.fullmatch(name):
        return "must not be an IP address"
    if destination_type == "S3":
        for start in S3_RESERVED_STARTS:
            if name.startswith(start):
                return f"must not start with {start!r} (reserved by AWS)"
        for end in S3_RESERVED_ENDS:
            if name.endswith(end):
                return f"must not end with {end!r} (reserved by AWS)"
    else:
        if name.startswith("goog"):
            return "must not start with 'goog' (reserved by Google)"
        if _LOOKS_LIKE_GOOGLE.search(name):
            return "must not contain 'google' or a look-alike (reserved by Google)"
    return None


def prefix_problem(prefix: str) -> str | None:
    """Why ``prefix`` is not a key prefix, or None. The empty prefix is the bucket root."""
    if len(prefix) > PREFIX_MAX:
        return f"must be at most {PREFIX_MAX} characters long"
    if "\\" in prefix:
        return "must not contain a backslash (segments are separated by '/')"
    if _CONTROL.search(prefix):
        return "must not contain control characters"
    if prefix.startswith("/"):
        return "must not start with '/' (it is a path inside the bucket, not an absolute path)"
    for segment in (prefix[:-1] if prefix.endswith("/") else prefix).split("/") if prefix else ():
        if segment == "":
            return "must not contain an empty segment ('//')"
        if segment in (".", ".."):
            return f"must not contain a {segment!r} segment"
    return None


def check_destination(destination_type: str, bucket_name: str, prefix: str | None) -> None:
    """A 400 naming the field when the bucket name or the prefix breaks the rules above."""
    problem = bucket_name_problem(bucket_name, destination_type)
    if problem:
        raise MockError.bad_request(
            f"bucketName: {shown(bucket_name)} is not a valid {destination_type} bucket name: it {problem}")
    problem = prefix_problem(prefix) if prefix is not None else None
    if problem:
        raise MockError.bad_request(f"prefix: {shown(prefix)} is not a valid key prefix: it {problem}")
