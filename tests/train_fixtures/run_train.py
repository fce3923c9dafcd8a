"""Run synth.train from a JSON config in a separate process (used by the kill/resume and DDP tests).

usage: python run_train.py CONFIG.json [--resume] [--sleep SECONDS]
--sleep slows each step down so the test can kill the process mid-run.
"""

import json
import sys
import time

from synth.training import TrainConfig, train


def main() -> None:
    config = TrainConfig.from_dict(json.loads(open(sys.argv[1]).read()))
    sleep = float(sys.argv[sys.argv.index("--sleep") + 1]) if "--sleep" in sys.argv else 0.0
    on_step = (lambda row: time.sleep(sleep)) if sleep else None
    if "--resume" in sys.argv:
        train(resume=config.out, on_step=on_step)
    else:
        train(config, on_step=on_step)


if __name__ == "__main__":
    main()
