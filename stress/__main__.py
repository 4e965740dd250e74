"""`python -m stress [--short]`: see stress/run.py."""

from stress.run import main

raise SystemExit(main())
