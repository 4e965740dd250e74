"""Delivery: a Pub/Sub push decoded into an envelope, handled once in effect, or dead-lettered."""
