"""A remote A2A agent as a lobby member: what is sent to it and how its answer comes back.

- parts.py: a lobby message as an A2A message, an A2A answer as one reply text (no I/O);
- call.py: one call with the official a2a-sdk client, bounded in time, tried again on
  timeouts, refused connections and 5xx, its errors translated into ours.

The agent itself is agents/remote.py; its function is delivery/remote.py.
"""
