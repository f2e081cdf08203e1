"""Settings, logging set-up and routing-file loading."""
