"""Apify API v2 emulator serving deterministic synthetic Instagram followers (see server.py)."""
from .actors import PROFILES
from .faults import Settings
from .followers import Follower, follower_count, followers, normalize_username
from .server import EmulatorServer, EmulatorState, make_app, serve, spawn

__all__ = ["Follower", "follower_count", "followers", "normalize_username",
           "PROFILES", "EmulatorServer", "EmulatorState", "Settings", "make_app", "serve", "spawn"]
