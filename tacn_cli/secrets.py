"""Secret masking for the CLI: the registry lives in :mod:`tacn.pipelines.config.secrets` so the library can use it too."""

from tacn.pipelines.config.secrets import _SECRETS, MIN_SECRET_LENGTH, mask_value, register_secret, scrub

__all__ = ["MIN_SECRET_LENGTH", "_SECRETS", "mask_value", "register_secret", "scrub"]
