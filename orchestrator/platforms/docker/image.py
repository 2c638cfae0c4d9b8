"""The node image a docker run's validators run: ``--image`` (a reference or an id), else
``aitbc-testnet-node:<AITBC_IMAGE_TAG or this package's version>`` (what ``make image``
tags), found in the engine before anything of the run is created."""

from __future__ import annotations

import os
from collections.abc import Mapping

from orchestrator.external.container_engine import ContainerEngine, ImageInfo, ImageMissingError
from orchestrator.platforms.validator_container import ENV_IMAGE_TAG, default_image_reference

__all__ = ["find_image", "image_reference"]


def image_reference(image: str | None, env: Mapping[str, str] = os.environ) -> str:
    """The image to run: ``image`` when given, else the default reference."""
    return image or default_image_reference(env)


def find_image(engine: ContainerEngine, reference: str) -> ImageInfo:
    """The image ``reference`` in ``engine``; ImageMissingError (exit 3) saying how to build
    it or which flags choose another."""
    try:
        return engine.image(reference)
    except ImageMissingError:
        raise ImageMissingError(
            f"the docker platform runs the validators from image {reference}, which the engine "
            f"at {engine.base_url} does not have: build it with `make image` in the "
            f"aitbc-testnet checkout, or choose another with --image or {ENV_IMAGE_TAG}"
        ) from None
