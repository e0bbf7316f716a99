"""Vision-Zero games: whole games per second, batched across games vs one game at a time.

A game is N players x R clue rounds of turns (each player sees the earlier
clues, so turns within a game are sequential) plus one vote per player. The
batched rollout (`recipes.spy_game.play_games`) makes one generate call per
turn across all G games and one call for all votes: R*N + 1 calls in all. The
sequential rollout plays the same games one after another: G*(R*N + 1) calls.
Both run here on the same model, pairs and sampling settings:

    .venv/bin/python bench/spy_games.py [--model DIR] [--games 32] [--batch-size 32]

Prints games/s for each and the speed-up.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

# Python puts bench/ first on sys.path, where bench/retrieval.py would shadow the `retrieval` package:
# drop it and import the shared helpers as bench._common from the repository root.
_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))
from bench._common import machine, model_dir, timed  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model")
    ap.add_argument("--size", default="small")
    ap.add_argument("--games", type=int, default=32)
    ap.add_argument("--players", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--clue-tokens", type=int, default=24)
    ap.add_argument("--vote-tokens", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args()

    import torch

    from models.generation import SamplingParams, TransformersEngine
    from models.loading import load_vlm
    from recipes.visionzero import game as sg
    from retrieval.sources import build_source
    from retrieval.spy_pairs import make_pair

    path = model_dir(args.model, args.size)
    model, proc = load_vlm(path, device="cuda" if torch.cuda.is_available() else "cpu")
    engine = TransformersEngine(model, proc, batch_size=args.batch_size)
    records = list(build_source("procedural", n=args.games, seed=11).iter_items())
    pairs = [make_pair(r, random.Random(i)) for i, r in enumerate(records)]
    spies = [random.Random(100 + i).randrange(args.players) for i in range(len(pairs))]
    clue = SamplingParams(temperature=1.0, max_new_tokens=args.clue_tokens, seed=0)
    vote = SamplingParams(temperature=0.0, max_new_tokens=args.vote_tokens)

    def fresh():
        return [sg.Game(f"g{i}", s, [p.spy if k == s else p.civilian for k in range(args.players)]) for i, (p, s) in enumerate(zip(pairs, spies))]

    def batched():
        games = fresh()
        return sg.play_games(games, engine, engine, args.rounds, clue, vote), games

    def sequential():
        games, calls = fresh(), 0
        for g in games:
            calls += sg.play_games([g], engine, engine, args.rounds, clue, vote)
        return calls, games

    sg.play_games(fresh()[:2], engine, engine, 1, clue, vote)  # warm-up
    results = {}
    for name, fn in (("sequential", sequential), ("batched", batched)):
        best, med, (calls, games) = timed(fn, args.repeats)
        tokens_ok = sum(c["ok"] for g in games for c in g.clues)
        results[name] = {"games_per_s": len(games) / best, "median_games_per_s": len(games) / med, "generate_calls": calls,
                         "well_formed_clues": tokens_ok}
    out = {
        "machine": machine(), "model_parameters": sum(p.numel() for p in model.parameters()),
        "games": len(pairs), "players": args.players, "rounds": args.rounds, "batch_size": args.batch_size,
        "clue_tokens": args.clue_tokens, "vote_tokens": args.vote_tokens, **results,
        "speedup_batched_vs_sequential": results["batched"]["games_per_s"] / results["sequential"]["games_per_s"],
    }
    print(f"machine: {out['machine']}; model {out['model_parameters']:,} parameters; {len(pairs)} games, "
          f"{args.players} players x {args.rounds} rounds")
    for name in ("sequential", "batched"):
        r = results[name]
        print(f"  {name:10s} {r['games_per_s']:7.2f} games/s (median {r['median_games_per_s']:.2f}), {r['generate_calls']} generate calls")
    print(f"  batched vs sequential: {out['speedup_batched_vs_sequential']:.1f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
