"""The named choices that the CLI, the API schema and the code share, each listed once.

A `Literal` type for the code and the schema, and its values as a tuple for checks and help texts.
Only the standard library is imported here: the CLI reads these before anything heavy loads.
"""

from __future__ import annotations

from typing import Literal, get_args

SearchMode = Literal["semantic", "keyword", "hybrid"]
SEARCH_MODES: tuple[SearchMode, ...] = get_args(SearchMode)

SortOrder = Literal["relevance", "newest"]
SORT_ORDERS: tuple[SortOrder, ...] = get_args(SortOrder)

# `ridge`: a linear head solved in closed form (encoders/ridge.py), not a loss descended by epochs.
LossName = Literal["soft-contrastive", "infonce", "regression", "ridge"]
LOSSES: tuple[LossName, ...] = get_args(LossName)

# The text encoders a head is trained with (`jointspace train --text`, `eval --grid`). The registry
# (`jointspace.text_encoders` entry points) also holds open-clip, which comes from `model import`.
TrainableText = Literal["minilm", "glove", "word2vec", "fasttext"]
TRAINABLE_TEXT_ENCODERS: tuple[TrainableText, ...] = get_args(TrainableText)
