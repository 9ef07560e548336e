"""The engines' own argument parsers, asked about the commands a stack generates.

The program and the policy pack never import an engine: each engine release has a virtualenv of its own
(scripts/engines.sh, pinned in tools/engines/) and a small harness script run with that virtualenv's Python
(tools/engines/*_parser.py). This package splits a container's command the way its shell would, finds the
engine invocations in it, and talks to the harnesses.
"""
