"""The whole loop from Python on the embedded models, offline: generate data, train a student on it, then ask
whether the student got better. SmolLM2-135M is teacher, student and judge here, so every step is real but the
verdicts are weak; point `teacher` and `judge` at real models for real answers.

    .venv/bin/python examples/loop.py            # runs/loop -> students/loop -> students/loop/evals/...
"""

from pathlib import Path

import synth
from synth.evaluation import evaluate
from synth.resources import seeds_dir


def main() -> None:
    # explanation mode on the bundled seeds: one teacher call per record; the eval's prompts share no task with them
    run = synth.generate(teacher="local", queries=str(seeds_dir() / "general.jsonl"), num=16, max_tokens=512,
                         out="runs/loop", overwrite=True)
    print(f"generate: {run.status}, {run.records} records in {run.path}")

    student = synth.train(data="runs/loop", out="students/loop", epochs=1, max_len=512, overwrite=True)
    print(f"train: {student.steps} steps, eval loss {student.eval_loss_before} -> {student.eval_loss_after}")

    result = evaluate(student.out, judge="local", tasks="bundled", limit=8, max_new_tokens=96, overwrite=True)
    low, high = result.win_rate_ci95
    print(f"eval: tuned vs base, {result.wins} wins / {result.ties} ties / {result.losses} losses; "
          f"win rate {result.win_rate} (95% CI {low:.2f}-{high:.2f}); "
          f"position bias {result.summary['position_bias']['rate']}")
    for name, numbers in result.summary["models"].items():
        print(f"  {name}: ROUGE-L {numbers['rouge_l']}, reference loss {numbers['reference_loss']}, "
              f"degenerate {numbers['degenerate'].get('rate')}")
    print(f"report: {Path(result.out) / 'report.html'}")


if __name__ == "__main__":
    main()
