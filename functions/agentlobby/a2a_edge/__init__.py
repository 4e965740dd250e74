"""A lobby as an A2A agent: its card, the JSON-RPC methods and their event streams.

The user trigger serves each lobby at `/a2a/{lobby}` (docs/a2a.md). The wire format is the
official `a2a-sdk`'s (its protobuf types, JSON encoding and error objects); the serving is ours,
synchronous inside the Flask-based user function, because the SDK's own server is an ASGI app
with its own task store and executor, while a lobby's tasks are its Firestore conversations.

    card.py     the agent card of a lobby, from its members
    inbound.py  an A2A message -> the PostMessage a lobby takes (or the protocol's error)
    tasks.py    a conversation's view -> an A2A task: state, history, artifacts (pure)
    methods.py  SendMessage, GetTask, CancelTask, and the two streaming methods
    stream.py   a task's progress as server-sent events, on Firestore listeners
    rpc.py      the JSON-RPC envelope: parse, route, and the protocol's error objects
    wire.py     protobuf <-> JSON, the one place that touches google.protobuf

Imported only when a request asks for /a2a/..., so no other function pays for the SDK.
"""
