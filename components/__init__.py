"""Pulumi ComponentResources: the LWS controller, model storage, and one inference group per model."""

PACKAGE = "lws-inference"
