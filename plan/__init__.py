"""The deployment plan: pure functions from stack config to every number a group needs."""
