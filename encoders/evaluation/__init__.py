"""Retrieval evaluation of a joint space: text → image and image → image, against a random base rate."""
