"""The sandbox: model-written code run in Linux namespaces, a fresh uid and rlimits, no network.

runner.py starts a run and reads its result; helpers.py keeps the helper processes (one warm
spare); inside.py is what runs inside the isolation; service.py is the sandbox function's HTTP
handler and client.py the interpreter's client of it. runner.py, helpers.py and inside.py
use the standard library only, so `agentlobby run-code` starts fast.
"""
