"""The user HTTP API: the user trigger's routes, its request and response models, and views."""
