"""Stateful models: an output fed back as the next call's input (RNN state, KV cache).

A *state pair* ``(input, output)`` means: at step ``t`` the model reads ``input`` and
writes ``output``, and at step ``t + 1`` the caller feeds that ``output`` back as
``input``. :func:`detect_pairs` finds the usual pairs from the graph's signature: same
dtype, same rank, the same dims (fixed dims equal, dynamic dims dynamic), and names that
match one of these conventions:

| input | output |
|---|---|
| ``state``, ``h``, ``c`` | ``stateN``, ``hn``, ``cn`` (the name plus ``n``/``N``) |
| ``past_key_values.0.key`` | ``present.0.key`` / ``present_key_values.0.key`` |
| ``x_in``, ``x_input``, ``in_x`` | ``x_out``, ``x_output``, ``out_x`` |

Anything else is named by the user: ``--state IN=OUT`` on the CLI, ``state=`` in
:func:`edgeort.package` (which replaces detection; ``state={}`` turns it off).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from edgeort.bundle import TensorSpec
from edgeort.errors import UsageError

__all__ = ["StatePair", "check_pairs", "detect_pairs", "parse_state"]

StatePair = tuple[str, str]  # (input name, output name)

_IN_OUT = (("input", "output"), ("in", "out"), ("inp", "out"))
_SEP = "_.-:/"


def _same_signature(a: TensorSpec, b: TensorSpec) -> bool:
    if a.dtype != b.dtype or len(a.shape) != len(b.shape):
        return False
    # Fixed dims must agree; a dynamic dim on either side fits (exporters often leave
    # a state output's dims unnamed while the input's are fixed).
    return all(
        x == y for x, y in zip(a.shape, b.shape, strict=True)
        if isinstance(x, int) and isinstance(y, int)
    )  # fmt: skip


def _names_match(inp: str, out: str) -> bool:
    if out in (inp + "n", inp + "N", inp + "_n", inp + "_new", inp + "_next"):
        return True
    for past, present in (("past_key_values", "present"), ("past", "present")):
        if past in inp and inp.replace(past, present, 1) == out:
            return True
        if past in inp and inp.replace(past, "present_key_values", 1) == out:
            return True
    for a, b in _IN_OUT:
        for sep in _SEP:
            suffix_in, suffix_out = f"{sep}{a}", f"{sep}{b}"
            if inp.endswith(suffix_in) and out == inp[: -len(suffix_in)] + suffix_out:
                return len(inp) > len(suffix_in)  # a stem besides in/out
            prefix_in, prefix_out = f"{a}{sep}", f"{b}{sep}"
            if inp.startswith(prefix_in) and out == prefix_out + inp[len(prefix_in) :]:
                return len(inp) > len(prefix_in)
    return False


def detect_pairs(
    inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec]
) -> tuple[StatePair, ...]:
    """The state pairs the names and signatures make evident (each name used once)."""
    pairs: list[StatePair] = []
    used_out: set[str] = set()
    for inp in inputs:
        for out in outputs:
            if out.name in used_out or not _same_signature(inp, out):
                continue
            if _names_match(inp.name, out.name):
                pairs.append((inp.name, out.name))
                used_out.add(out.name)
                break
    return tuple(pairs)


def parse_state(text: str) -> StatePair:
    """``"IN=OUT"`` -> ``("IN", "OUT")``."""
    inp, sep, out = text.partition("=")
    if not sep or not inp or not out or not re.fullmatch(r"[^=]+", out):
        raise UsageError(
            f"--state {text!r}: expected IN=OUT (the input that receives the output's value "
            "on the next call), e.g. --state state=stateN",
            option="--state",
        )
    return inp, out


def check_pairs(
    pairs: Mapping[str, str] | Sequence[StatePair],
    inputs: Sequence[TensorSpec],
    outputs: Sequence[TensorSpec],
) -> tuple[StatePair, ...]:
    """Every user-given pair names a real input and output with a matching signature."""
    items = list(pairs.items()) if isinstance(pairs, Mapping) else list(pairs)
    ins = {i.name: i for i in inputs}
    outs = {o.name: o for o in outputs}
    seen_in: set[str] = set()
    seen_out: set[str] = set()
    for inp, out in items:
        if inp not in ins:
            raise UsageError(
                f"--state {inp}={out}: the model has no input {inp!r} (inputs: {sorted(ins)})",
                option="--state",
            )
        if out not in outs:
            raise UsageError(
                f"--state {inp}={out}: the model has no output {out!r} (outputs: {sorted(outs)})",
                option="--state",
            )
        if inp in seen_in or out in seen_out:
            raise UsageError(
                f"--state {inp}={out}: {inp!r} or {out!r} is already in another state pair",
                option="--state",
            )
        a, b = ins[inp], outs[out]
        if a.dtype != b.dtype or len(a.shape) != len(b.shape):
            raise UsageError(
                f"--state {inp}={out}: input {inp!r} is {a.dtype} {list(a.shape)} but output "
                f"{out!r} is {b.dtype} {list(b.shape)}; a state output must fit its input",
                option="--state",
            )
        seen_in.add(inp)
        seen_out.add(out)
    return tuple((str(i), str(o)) for i, o in items)
