"""The store: the only code that talks to Google's services.

Pub/Sub lobbies (topics, push subscriptions, publishing, a live tail), Firestore documents
(conversations, the registry, delivery claims, model slots) and the clients behind them. Every
error of Google's SDK leaves this package as one of agentlobby.errors.
"""
