"""Settings: env files, config-check rules applied to them, live MongoDB/Redis checks, secret masking."""
