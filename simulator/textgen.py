"""Deterministic reply text and the one token-counting rule the simulator uses everywhere.

Tests assert exact equality between runs and between streaming and non-streaming answers, so
the text depends only on a digest of the request (plus the seed), never on timing or ids.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# Content words give the replies the flavour of the app the service fronts (drought resilience
# for farming communities), function words keep them readable.
CONTENT_WORDS: tuple[str, ...] = (
    "drought", "rainfall", "soil", "moisture", "pasture", "irrigation", "aquifer", "farmers",
    "livestock", "fodder", "hay", "dam", "water", "tanks", "crops", "wheat", "barley",
    "sorghum", "forecast", "resilience", "community", "cattle", "sheep", "paddock", "bore",
    "groundwater", "evaporation", "heatwave", "outlook", "deficit", "recovery", "support",
    "grants", "planning", "catchment", "river", "allocation", "stocking", "rates", "feed",
    "budget", "season", "harvest", "yield", "rotation", "mulch", "shelterbelts", "erosion",
    "runoff", "storage", "reserves", "trough", "pipeline", "nitrogen", "cover", "grazing",
    "district", "council", "neighbours", "volunteers", "wellbeing", "markets", "prices",
    "insurance", "finance", "advisers", "agronomist", "trial", "seedlings", "orchard",
    "vineyard", "dairy", "herd", "flock", "weather", "temperature", "humidity", "frost",
    "wind", "dust", "bushfire", "risk", "warning", "plan", "strategy", "priorities",
    "households", "township", "roads", "freight", "carting", "levels", "gauge", "records",
    "data", "sensors", "satellite", "mapping", "indicators", "thresholds", "response",
)
FUNCTION_WORDS: tuple[str, ...] = (
    "the", "and", "of", "to", "in", "for", "with", "on", "across", "during", "while",
    "because", "as", "is", "are", "remains", "will", "may", "should", "can", "improve",
    "reduce", "monitor", "protect", "share", "review", "prepare", "maintain", "local",
    "early", "careful", "steady", "seasonal", "regional", "reliable", "lower", "higher",
)
_MIN_REPLY, _MAX_REPLY = 24, 160


def count_tokens(text: str) -> int:
    """Roughly four characters a token, never zero: cheap, monotonic and easy to predict."""
    return max(1, math.ceil(len(text) / 4))


def canonical(obj: Any) -> bytes:
    """Key-sorted JSON so that equal requests hash equally whatever their key order."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()


def request_digest(
    seed: int,
    model: str,
    system: Any,
    messages: Any,
    max_tokens: int,
    temperature: float | None,
) -> bytes:
    """The identity of a request for generation purposes: same digest, same reply."""
    payload = canonical([seed, model, system, messages, max_tokens, temperature])
    return hashlib.blake2b(payload, digest_size=16).digest()


def rng_for(digest: bytes, salt: str = "") -> random.Random:
    return random.Random(digest + salt.encode())


@dataclass(frozen=True, slots=True)
class TextReply:
    """Reply tokens (one word each, leading space except the first) and why they stopped."""

    tokens: list[str]
    stop_reason: str
    stop_sequence: str | None


def natural_length(rng: random.Random, reply_tokens: int) -> int:
    """The length the 'model' wants to write, before max_tokens has a say."""
    return reply_tokens if reply_tokens > 0 else rng.randint(_MIN_REPLY, _MAX_REPLY)


def words(rng: random.Random, count: int) -> list[str]:
    """`count` words arranged as sentences: capitalised start, full stop every 6-14 words."""
    out: list[str] = []
    sentence_left = rng.randint(6, 14)
    capital = True
    for _ in range(count):
        pool = CONTENT_WORDS if rng.random() < 0.6 else FUNCTION_WORDS
        word = rng.choice(pool)
        if capital:
            word = word.capitalize()
        sentence_left -= 1
        capital = sentence_left == 0
        if capital:
            word += "."
            sentence_left = rng.randint(6, 14)
        out.append(word)
    if out and not out[-1].endswith("."):
        out[-1] += "."
    return out


def sentence(rng: random.Random, count: int) -> str:
    return " ".join(words(rng, count))


def as_tokens(items: Sequence[str]) -> list[str]:
    return [item if i == 0 else " " + item for i, item in enumerate(items)]


def text_reply(
    digest: bytes,
    max_tokens: int,
    reply_tokens: int = 0,
    stop_sequences: Sequence[str] = (),
) -> TextReply:
    """The full deterministic reply for a request; output never exceeds `max_tokens`."""
    rng = rng_for(digest)
    wanted = natural_length(rng, reply_tokens)
    tokens = as_tokens(words(rng, min(wanted, max_tokens)))
    cut = cut_at_stop_sequence(tokens, stop_sequences)
    if cut is not None:
        return TextReply(cut[0], "stop_sequence", cut[1])
    stop_reason = "max_tokens" if wanted > max_tokens else "end_turn"
    return TextReply(tokens, stop_reason, None)


def cut_at_stop_sequence(
    tokens: list[str], stop_sequences: Sequence[str]
) -> tuple[list[str], str] | None:
    """Tokens up to the earliest stop sequence (excluded, as the API does), or None."""
    text = "".join(tokens)
    hits = [(text.find(s), s) for s in stop_sequences if s and s in text]
    if not hits:
        return None
    position, stop = min(hits)
    kept: list[str] = []
    length = 0
    for token in tokens:
        if length + len(token) > position:
            if position > length:
                kept.append(token[: position - length])
            break
        kept.append(token)
        length += len(token)
    return kept, stop


def json_chunks(serialized: str) -> list[str]:
    """Split JSON text into 4-character tokens, matching `count_tokens` exactly."""
    return [serialized[i : i + 4] for i in range(0, len(serialized), 4)] or [""]
