"""HTTP routes; each module exposes a `router`."""
