"""Content types as RFC 9110 media types, ASCII only.

A stored content type goes back out as a header (a proxied download, a presigned PUT), so
anything else (non-ASCII letters, control characters) would fail later, far from the input.
"""

import re

MAX_MEDIA_TYPE_LENGTH = 255

# RFC 9110 §5.6.2 token (1*tchar); §5.6.4 quoted-string without obs-text (so ASCII only).
_TCHARS = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED_STRING = r'"(?:[\t !#-\[\]-~]|\\[\t -~])*"'
# §8.3.1: type "/" subtype *( OWS ";" OWS parameter ), where a parameter is required here.
_MEDIA_TYPE = re.compile(
    rf"{_TCHARS}/{_TCHARS}(?:[ \t]*;[ \t]*{_TCHARS}=(?:{_TCHARS}|{_QUOTED_STRING}))*"
)

DESCRIPTION = "an ASCII media type such as 'text/plain; charset=utf-8' (RFC 9110)"


def is_media_type(value: str) -> bool:
    return len(value) <= MAX_MEDIA_TYPE_LENGTH and _MEDIA_TYPE.fullmatch(value) is not None
