"""Leak audit: 100 conversations seeded with personal data through a real `rasa run`.

    .venv/bin/python benchmarks/leak_audit.py --json benchmarks/results/leak_audit.json
    .venv/bin/python benchmarks/leak_audit.py --conversations 20 --model models/shop/X.tar.gz

Starts the action server and ``rasa run --enable-api`` with ``--debug`` logging (Rasa then logs
every message it receives), the masking SQLite tracker store and the masking file event broker,
plays the conversations over REST, then searches every file under the temporary KEFU_HOME
(tracker store, event broker output, tickets, knowledge index) and both logs for every seeded
value, as typed, JSON-escaped, without spaces and in NFKC form. Every token in the tracker store
must reveal one of the seeded values from the vault.

Besides names, phones, e-mails, ID, card and IBAN numbers and addresses, each conversation has
one harder shape — a lower-case name after a cue ("my name is zhang wei"), "I'm Zhang Wei", or a
phone number in full-width digits — and two conversations in three are held under a sender id
that is personal data itself (a phone number or an e-mail address, as Telegram- or
WhatsApp-style channels use): it must appear nowhere but as its sender token.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from common import offline_env, table, write_json

offline_env()

from components.assistants import get_assistant  # noqa: E402
from deployment import leak_audit  # noqa: E402
from deployment.servers import running_servers  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=100)
    parser.add_argument(
        "--model", type=Path, default=None, help="default: newest in models/<assistant>/"
    )
    parser.add_argument("--no-debug", action="store_true", help="run the servers at INFO level")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    model = args.model or max(
        get_assistant().models.glob("*.tar.gz"), default=None, key=lambda p: p.stat().st_mtime
    )
    if model is None or not model.is_file():
        print("error: no trained model; run `make train` or pass --model", file=sys.stderr)
        return 2
    if args.conversations < 1:
        print("error: --conversations must be at least 1", file=sys.stderr)
        return 2
    convs = leak_audit.conversations(args.conversations, seed=100)
    with tempfile.TemporaryDirectory() as folder:
        print(f"[bench] starting servers with {model.name} ...", file=sys.stderr, flush=True)
        with running_servers(model, Path(folder), debug=not args.no_debug) as servers:
            print(f"[bench] {len(convs)} conversations ...", file=sys.stderr, flush=True)
            start = time.perf_counter()
            result = leak_audit.run(servers, convs)
            elapsed = time.perf_counter() - start
    results = {
        "model": model.name,
        "debug_logs": not args.no_debug,
        "conversations": result.conversations,
        "turns": result.turns,
        "values_sent": result.values_sent,
        "sent_by_kind": result.sent_by_kind,
        "files_scanned": result.files_scanned,
        "raw_occurrences": len(result.leaks),
        "leaks": result.leaks,
        "tokens_in_tracker_store": result.tokens_found,
        "vault_round_trip": result.vault_round_trip,
        "values_recoverable": result.values_recoverable,
        "seconds": round(elapsed, 1),
    }
    print(
        f"\nLeak audit ({result.conversations} conversations, {result.turns} turns, "
        f"{'debug' if not args.no_debug else 'info'} logs, {elapsed:.0f} s)"
    )
    print(
        table(
            [
                "personal values sent",
                "raw occurrences at rest",
                "files searched",
                "tokens stored",
                "vault round trip",
                "values recoverable",
            ],
            [
                [
                    result.values_sent,
                    len(result.leaks),
                    len(result.files_scanned),
                    result.tokens_found,
                    f"{result.vault_round_trip:.1%}",
                    result.values_recoverable,
                ]
            ],
        )
    )
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(result.sent_by_kind.items()))
    print(f"values sent by kind: {kinds}")
    for leak in result.leaks[:20]:
        print(f"  leak: {leak}")
    write_json(args.json, results)
    return 0 if not result.leaks else 1


if __name__ == "__main__":
    sys.exit(main())
