"""Fine-tune the embedded student on a synth run from Python, then load the adapter the usual PEFT way.

    .venv/bin/python examples/train_student.py                  # runs/demo (make demo) -> students/example
    .venv/bin/python examples/train_student.py runs/general 3   # any run folder or export, and epochs

`synth.train` and `synth.TrainConfig` are the same objects as the ones imported here.
"""

import json
import sys

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

from synth.training import TrainConfig, train


def main() -> None:
    data = sys.argv[1] if len(sys.argv) > 1 else "runs/demo"
    epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    config = TrainConfig(data=data, out="students/example", epochs=epochs, samples=2, sample_max_tokens=64)
    result = train(config, overwrite=True)
    print(f"{result.steps} steps, eval loss {result.eval_loss_before:.3f} -> {result.eval_loss_after:.3f}, "
          f"{result.tokens_per_s:.0f} tokens/s")
    for row in map(json.loads, (result.out / "samples.jsonl").read_text().splitlines()):
        print("-" * 60)
        print("prompt:", row["messages"][-1]["content"][:200])
        print("base:  ", row["base"][:200])
        print("tuned: ", row["tuned"][:200])

    # serving: the base model plus the adapter, with the tokenizer and chat template saved next to it
    provenance = json.loads((result.out / "provenance.json").read_text())
    base = AutoModelForCausalLM.from_pretrained(provenance["student_folder"])
    model = PeftModel.from_pretrained(base, str(result.adapter)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(result.adapter))
    inputs = tokenizer.apply_chat_template([{"role": "user", "content": "Give one tip for learning to cook."}],
                                           add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=48, do_sample=False)
    print("=" * 60)
    print(tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))


if __name__ == "__main__":
    main()
