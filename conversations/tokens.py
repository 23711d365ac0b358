"""A token estimate that needs no tokenizer tables.

Exact tokenizers (tiktoken) download their tables on first use, which fails offline,
and differ between model families anyway. The context budget only needs a safe upper
bound: about four bytes of UTF-8 per token holds for English with every common
tokenizer, and errs on the generous side for scripts that take more bytes per token.
"""

from __future__ import annotations

BYTES_PER_TOKEN = 4
# Each chat message costs a few tokens of framing (role, separators) on top of its text.
MESSAGE_OVERHEAD_TOKENS = 4


def estimate_tokens(text: str) -> int:
    return -(-len(text.encode("utf-8", "surrogatepass")) // BYTES_PER_TOKEN) + MESSAGE_OVERHEAD_TOKENS
