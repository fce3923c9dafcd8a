"""`python -m synth.teacher.llama_server ARGS`: llama.cpp's own OpenAI-compatible server (llama_cpp.server, same
arguments), with llama.cpp's extra weight buffer types turned off.

Those buffer types repack the weights for special CPU units at load time. On virtual machines with Intel AMX
(Sapphire Rapids and later) the AMX one crashes llama.cpp with a segmentation fault on the first request
(llama.cpp issue 20824), which took the embedded teacher down in the middle of a run. A 135M model loses next to
nothing without them.
"""

from __future__ import annotations


def _without_extra_buffer_types() -> None:
    import llama_cpp.llama_cpp as bindings

    defaults = bindings.llama_model_default_params

    def model_params():
        params = defaults()
        params.use_extra_bufts = False
        return params

    bindings.llama_model_default_params = model_params


def main() -> None:
    _without_extra_buffer_types()
    from llama_cpp.server.__main__ import main as serve

    serve()


if __name__ == "__main__":
    main()
