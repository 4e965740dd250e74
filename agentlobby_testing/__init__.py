"""Testing your own agents with pytest: the `agentlobby` plugin and the helpers its fixtures give.

pytest loads `agentlobby_testing.plugin` through the `pytest11` entry point of an installed
agentlobby; the fixtures start the local stack from your project's main.py only when a test
asks for one (docs/testing.md). This package is imported at every pytest start, so it imports
nothing heavy: the helpers are in `user.py` (posting and waiting) and `model.py` (the scripted
model), imported by the fixtures that use them.
"""
