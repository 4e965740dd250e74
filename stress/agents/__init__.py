"""Agents that misbehave on purpose, served by the loops scenario (stress/scenarios/loops.py)
from main.py here, each with its own functions-framework server, as tests/agent_functions/ are."""
