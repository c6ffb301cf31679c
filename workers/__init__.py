"""workers stage."""
