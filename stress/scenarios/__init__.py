"""One module per scenario kind; each `run(h, plan)` returns its table rows and leaves the stack
as it found it (servers serving, Firestore running), so the next scenario starts clean."""
