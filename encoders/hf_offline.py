"""The Hugging Face libraries' offline switches, for every model loaded from local files."""

from __future__ import annotations

import os


def hf_offline() -> None:
    """Keeps huggingface_hub and transformers off the network: models load from the local cache or
    the installed weights only. Call before importing them (they read the variables on import); a
    value already set in the environment wins."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
