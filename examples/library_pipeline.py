"""Use synth from Python: generate a small run, read its records, export them for a trainer.

    .venv/bin/python examples/library_pipeline.py                      # embedded local teacher, offline
    .venv/bin/python examples/library_pipeline.py gpt-4o-mini          # any litellm model (key from the environment)
    .venv/bin/python examples/library_pipeline.py gpt-4o-mini http://127.0.0.1:8000/v1   # an OpenAI-compatible server
"""

import sys

import synth


def main() -> None:
    teacher = sys.argv[1] if len(sys.argv) > 1 else "local"
    api_base = sys.argv[2] if len(sys.argv) > 2 else None
    config = synth.GenerateConfig(out="runs/example", teacher=teacher, api_base=api_base, num=5, instances_per_task=1,
                                  max_cost=0.50)
    result = synth.generate(config, overwrite=True)
    print(f"{result.status}: {result.records} records, ${result.manifest['usage']['cost_usd']:.4f}")
    for record in synth.load_records(result.path)[:2]:
        print("-" * 60)
        print("system:", record["system_message"]["id"])
        print("task:  ", record["task"]["instruction"])
        print("answer:", record["response"][:300])
    synth.export(result.path, "openai-chat", "runs/example/train.jsonl")


if __name__ == "__main__":
    main()
