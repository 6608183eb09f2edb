"""`redes perceptron`: Rosenblatt's rule on a logic gate's truth table, every step printed.

The lecture's worked example: a perceptron with w1 = w2 = 0.9, bias −0.5 and learning
rate η = 0.5 learns AND; the same start learns OR and NAND, and never XOR.
No MNIST, no tracking: the whole run is the printout.
"""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import BadInput, user_errors

INPUTS = ((0, 0), (0, 1), (1, 0), (1, 1))
#: The desired output for each row of INPUTS.
GATES = {"and": (0, 0, 0, 1), "or": (0, 1, 1, 1), "nand": (1, 1, 1, 0), "xor": (0, 1, 1, 0)}


def perceptron(
    gate: Annotated[str, typer.Option(help="The truth table to learn: and | or | nand | xor (never learned).")] = "and",
    weights: Annotated[str, typer.Option(help="Initial weights w1,w2.")] = "0.9,0.9",
    bias: Annotated[float, typer.Option(help="Initial bias b.")] = -0.5,
    eta: Annotated[float, typer.Option(help="Learning rate η (the lecture's r).")] = 0.5,
    epochs: Annotated[int, typer.Option(min=1, help="Most sweeps over the truth table.")] = 20,
) -> None:
    """Train one perceptron on a logic gate with the perceptron rule and print every step."""
    from core.perceptron import Perceptron

    with user_errors():
        gate = gate.lower()
        if gate not in GATES:
            raise BadInput(f"--gate {gate!r} is unknown; choose one of {', '.join(GATES)}")
        w = parse_weights(weights)
        if not eta > 0:
            raise BadInput(f"--eta {eta!r}: the learning rate must be > 0, e.g. --eta 0.5")
    unit = Perceptron(w, b=bias, eta=eta)
    name = gate.upper()
    print(f"perceptron learning {name}: w = {vector(unit.w)}, b = {number(unit.b)}, η = {number(eta)}")
    print("rule: y = 1 if w·x + b > 0 else 0; when y ≠ d: w ← w + η(d − y)x, b ← b + η(d − y)")
    updates = 0
    for epoch in range(1, epochs + 1):
        print(f"epoch {epoch}")
        mistakes = 0
        for x, d in zip(INPUTS, GATES[gate]):
            z = float(unit.w @ x + unit.b)
            y = int(unit.predict(x))
            line = f"  x = {x}  d = {d}  w·x + b = {number(z):>5}  y = {y}"
            if unit.step(x, d):
                mistakes += 1
                updates += 1
                line += f"  wrong: w = {vector(unit.w)}, b = {number(unit.b)}"
            else:
                line += "  right"
            print(line)
        if mistakes == 0:
            print(f"{name} learned: no mistake in epoch {epoch}, after {plural(updates, 'update')}; "
                  f"w = {vector(unit.w)}, b = {number(unit.b)}")
            return
    why = "XOR is not linearly separable: no line splits its 1s from its 0s" if gate == "xor" else "try more --epochs"
    print(f"{name} not learned: mistakes in every one of {epochs} epochs, {plural(updates, 'update')}; {why}")


def parse_weights(text: str) -> tuple[float, float]:
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise BadInput(f"--weights {text!r} must be two comma-separated numbers, e.g. 0.9,0.9") from None
    if len(values) != 2:
        raise BadInput(f"--weights {text!r} must be two numbers w1,w2 (one per input of the gate)")
    return values


def number(value: float) -> str:
    """A short decimal: 0.9 − 0.5 prints 0.4, not 0.39999999999999997; never −0."""
    return f"{round(float(value), 10) + 0.0:g}"


def plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def vector(values) -> str:
    return "(" + ", ".join(number(v) for v in values) + ")"
