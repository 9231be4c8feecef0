"""API keys (table api_keys): 256-bit random strings, of which only a SHA-256 is stored."""
import hashlib
import secrets

import sqlalchemy as sa

from utils.store.schema import api_keys, utcnow


def _hash_key(key):
    # Keys are 256-bit random strings, so a fast hash suffices: nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(engine, name):
    """A new key for `name`; it is returned once and only its hash is stored."""
    key = "fs_" + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(api_keys.insert().values(name=name, key_hash=_hash_key(key), created_at=utcnow()))
    return key


def revoke_api_key(engine, name):
    """Revoke the live key called `name`; False when there is none."""
    with engine.begin() as conn:
        return bool(conn.execute(
            api_keys.update().where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        ).rowcount)


def rotate_webhook_secret(engine, name):
    """A new callback signing secret for the live key `name` (returned once), or None."""
    secret = "whsec_" + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        changed = conn.execute(api_keys.update().where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
                               .values(webhook_secret=secret)).rowcount
    return secret if changed else None


def webhook_secret_of(engine, key_id):
    """The key's own callback signing secret, or None."""
    if key_id is None:
        return None
    with engine.connect() as conn:
        return conn.execute(sa.select(api_keys.c.webhook_secret).where(api_keys.c.id == key_id)).scalar()


def spending_limits(engine, key_id):
    """(default maxCostUsd, maximum maxCostUsd, monthly cap) set on the key, each None when unset."""
    if key_id is None:
        return None, None, None
    with engine.connect() as conn:
        row = conn.execute(sa.select(api_keys.c.default_max_cost_usd, api_keys.c.max_cost_usd_limit,
                                     api_keys.c.monthly_cap_usd).where(api_keys.c.id == key_id)).first()
    return tuple(row) if row else (None, None, None)


def set_spending_limits(engine, name, **limits):
    """Set the live key's limits (default_max_cost_usd, max_cost_usd_limit, monthly_cap_usd); False if none."""
    with engine.begin() as conn:
        return bool(conn.execute(api_keys.update().where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
                                 .values(**limits)).rowcount)


def lock(conn, key_id):
    """Lock the key's row for the rest of the transaction (what creating its jobs takes first)."""
    conn.execute(sa.select(api_keys.c.id).where(api_keys.c.id == key_id).with_for_update())


def is_live(engine, key_id):
    """Whether the key with this id is still live (not revoked)."""
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.exists().where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None)))
                            ).scalar()


def api_key_id(engine, key):
    """The id of the live key `key`, or None."""
    with engine.connect() as conn:
        return conn.execute(
            sa.select(api_keys.c.id)
            .where(api_keys.c.key_hash == _hash_key(key), api_keys.c.revoked_at.is_(None))
        ).scalar()
