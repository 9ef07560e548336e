"""One parser of container image references, for the plan and the policy pack.

A reference is `[registry/]path[:tag][@digest]` (the grammar of github.com/distribution/reference):
the first path component is a registry only when it has a `.` or a `:` or is `localhost`, so
`localhost:5000/lws` has no tag and `vllm/vllm-openai` no registry.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ImageRef:
    repository: str
    """Everything before the tag and digest, registry included: registry.k8s.io/lws/lws."""
    tag: str | None
    digest: str | None

    @property
    def registry(self) -> str | None:
        first, slash, _ = self.repository.partition("/")
        return first if slash and ("." in first or ":" in first or first == "localhost") else None

    @property
    def path(self) -> str:
        """The repository without its registry: vllm/vllm-openai, lmsysorg/sglang."""
        registry = self.registry
        return self.repository[len(registry) + 1 :] if registry else self.repository

    @property
    def name(self) -> str:
        """The last path component: vllm-openai, sglang, lws."""
        return self.repository.rsplit("/", 1)[-1]

    @property
    def pin(self) -> str | None:
        """What pins it: '@<digest>' when it has one, else the tag; None for neither."""
        return f"@{self.digest}" if self.digest else self.tag


def parse_image(image: str) -> ImageRef:
    """registry/path/name[:tag][@digest] split into its parts; never raises."""
    name, _, digest = image.strip().partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else None
    repository = name[: -(len(tag) + 1)] if tag is not None else name
    return ImageRef(repository, tag or None, digest or None)
