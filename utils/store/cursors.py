"""Opaque page cursors: `kind:text`, base64url without padding, one codec for every kind."""
import base64
import binascii
import uuid


def encode(kind, text):
    return base64.urlsafe_b64encode(f"{kind}:{text}".encode()).decode().rstrip("=")


def decode(kind, cursor):
    """The text of a cursor of this kind; ValueError for anything else."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError("malformed cursor") from None
    prefix, _, rest = text.partition(":")
    if prefix != kind:
        raise ValueError("malformed cursor")
    return rest


def is_uuid(value):
    """Whether `value` is a UUID in its canonical form, the only one Postgres takes for a uuid
    (Python would take `urn:uuid:…`, braces and no hyphens too)."""
    try:
        return str(uuid.UUID(str(value))) == str(value).lower()
    except ValueError:
        return False
