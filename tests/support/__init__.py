"""Helpers shared by the tests of every folder: plain functions and context managers.

- paths: where the repository, the deploy root and the `agentlobby` command are;
- waiting: polling until a condition holds;
- user: the user API as a user sees it (JsonUser) and raw requests to it;
- lobbies: lobbies, agents and function servers a test wires on the session stack;
- envelopes: envelopes and conversations built by hand, as an agent would leave them;
- pubsub: Pub/Sub push bodies, posting them to an entry point, publishing to a lobby;
- coding: the coding loop's scripts, tasks, model statistics and views;
- cli: running the `agentlobby` command;
- fake_http: a throwaway local HTTP server;
- sandbox: running code in the sandbox at each isolation level;
- model_server: the offline model server's client side;
- agents: test-only agents, served by functions-framework like the real ones.

The session fixtures (the stack and what it gives) are in tests/conftest.py.
"""
