"""lws-inference-guard: policies for multi-node LLM inference with LeaderWorkerSet.

Each policy is a pure function `check_<policy>(resource_type, props, settings) -> list[str]` in its
module; `lws_guard.pack` wraps them into pulumi_policy objects, and policies/__main__.py serves them.
"""
