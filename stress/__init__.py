"""`make stress`: the local stack under load, crashes, poison, fuzzing, a paused database and
agent loops, with the offline model, printing one table row per scenario.

The tests prove each promise once, on a quiet stack; this runner proves that the promises hold
together and at volume (nothing lost, nothing duplicated, every conversation final) and measures
how long recovery takes. docs/stress.md says what each scenario proves and how to read the
table. It is a dev tool: it is not installed, `python -m stress` runs it from the repo root.
"""
