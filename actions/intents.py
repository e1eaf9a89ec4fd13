"""Intent names the shared actions look at: every assistant's domain uses these names."""

from __future__ import annotations

#: Intents after which the knowledge action runs as the fallback: a message the NLU is unsure of
#: may still be a question the knowledge base answers; if not, the usual apology follows.
FALLBACK_INTENTS = frozenset({"nlu_fallback"})
#: The intent of a question about the shop's policies (a follow-up is joined to it).
POLICY_INTENT = "ask_policy"
#: Intents that make a handoff ticket's reason ``fallback`` rather than ``request``.
UNHANDLED_INTENTS = frozenset({"nlu_fallback", "out_of_scope"})
