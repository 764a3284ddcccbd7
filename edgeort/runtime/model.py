"""The loaded model: validated ``run()``, placement and IO binding over one ORT session.

:class:`Model` is what :func:`edgeort.load` returns. Every per-input check is computed
once, at construction (:class:`edgeort.runtime.inputs.InputCheck`), so ``run()`` does a
handful of attribute compares per input before calling ``InferenceSession.run``. The
hot path touches no shared mutable state, so one ``Model`` may be used from many
threads at once; ORT sessions are thread-safe for ``run`` and edgeort creates its
sessions with ``enable_fallback=0``, so ORT never re-creates a session under a
running call.

Feeds are checked against the recorded signature (:class:`TensorSpec`-like objects with
``name``, ``dtype``, ``shape``): missing, extra, dtype (no silent casts, except Python
lists and scalars, converted to the expected dtype when that is a same-kind cast), rank
and fixed dims. Any exception ORT raises while running is translated into an
:class:`~edgeort.errors.InputError` or :class:`~edgeort.errors.ProviderError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import onnxruntime as ort

from edgeort.errors import EdgeortError, InputError, ProviderError, UsageError
from edgeort.runtime.inputs import InputCheck, check_shared_dims, shared_dims

if TYPE_CHECKING:  # pragma: no cover
    from edgeort.bundle import TensorSpec, Variant
    from edgeort.profiles import Profile
    from edgeort.runtime.placement import PlacedNode, Placement

__all__ = ["Model", "PlacedNode", "Placement", "translate_ort_error"]


def __getattr__(name: str) -> Any:
    """``Placement`` and ``PlacedNode`` live in :mod:`edgeort.runtime.placement`, imported
    on first use (``Model.placement()``): loading a model does not define them."""
    if name in {"PlacedNode", "Placement"}:
        from edgeort.runtime import placement

        return getattr(placement, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def translate_ort_error(
    exc: BaseException, *, action: str, provider: str | None, path: str | None = None
) -> EdgeortError:
    """Map an ORT/Python exception from ``action`` to the matching :class:`EdgeortError`."""
    name = type(exc).__name__
    message = f"{action} failed ({name}): {exc}"
    if name in ("InvalidArgument",) or isinstance(exc, (ValueError, TypeError)):
        return InputError(message)
    return ProviderError(message, provider=provider, path=path)


class Model:
    """A verified bundle variant running in an ONNX Runtime session.

    Create it with :func:`edgeort.load`. ``run(feeds)`` returns ``{output name: array}``.
    """

    __slots__ = (
        "__weakref__",
        "_checks",
        "_input_names",
        "_inputs",
        "_output_names",
        "_outputs",
        "_profile",
        "_provider",
        "_reasons",
        "_session",
        "_shared_dims",
        "_variant",
    )

    def __init__(
        self,
        session: ort.InferenceSession,
        *,
        inputs: Sequence[TensorSpec],
        outputs: Sequence[TensorSpec],
        variant: Variant | None = None,
        profile: Profile | str | None = None,
        reasons: Mapping[str, str] | None = None,
    ) -> None:
        """``profile``: the variant's :class:`Profile`, or its name (looked up on first
        use of :attr:`profile`: a load that follows a kept plan never reads profiles)."""
        self._session: ort.InferenceSession | None = session
        self._inputs = tuple(inputs)
        self._outputs = tuple(outputs)
        frozen = (variant.metadata.get("frozen_inputs") if variant else None) or {}
        self._checks = tuple(InputCheck.from_spec(s, frozen.get(s.name)) for s in self._inputs)
        self._input_names = frozenset(s.name for s in self._inputs)
        self._shared_dims = shared_dims(self._inputs)
        self._output_names = [s.name for s in self._outputs]
        self._variant = variant
        self._profile = profile
        self._reasons = dict(reasons or {})
        self._provider = session.get_providers()[0]

    # -- running ---------------------------------------------------------------------
    def run(
        self, feeds: Mapping[str, Any], output_names: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Run the model on ``feeds`` (``{input name: array}``) and return all outputs
        (or ``output_names``) by name. Raises :class:`InputError` for feeds that do not
        match the signature and :class:`ProviderError` for failures inside ORT."""
        session = self._session
        if session is None:
            raise UsageError("run() on a closed Model; load the bundle again")
        names = self._output_names if output_names is None else self._outputs_for(output_names)
        checked = self._check_feeds(feeds)
        try:
            values = session.run(names, checked)
        except Exception as exc:
            raise translate_ort_error(exc, action="run()", provider=self._provider) from exc
        return dict(zip(names, values, strict=True))

    __call__ = run

    def _check_feeds(self, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        if type(feeds) is not dict and not isinstance(feeds, Mapping):
            raise InputError(
                f"feeds must be a mapping {{input name: array}}, got {type(feeds).__name__}",
                expected="dict",
                got=type(feeds).__name__,
            )
        if len(feeds) != len(self._checks) or not self._input_names.issuperset(feeds):
            self._raise_names(feeds)
        checked = {c.name: c.check(feeds[c.name]) for c in self._checks}
        if self._shared_dims:
            check_shared_dims(self._shared_dims, checked)
        return checked

    def _raise_names(self, feeds: Mapping[str, Any]) -> None:
        expected = ", ".join(sorted(self._input_names))
        extra = sorted(str(k) for k in feeds if k not in self._input_names)
        missing = [c.name for c in self._checks if c.name not in feeds]
        if extra:  # a misspelt name shows as unknown + missing: name both
            import difflib  # only for this error's hint

            close = difflib.get_close_matches(extra[0], missing, 1, cutoff=0.5)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            absent = f"; missing input {missing[0]!r}" if missing else ""
            raise InputError(
                f"unknown input {extra[0]!r}{hint}{absent}; the model takes: {expected}",
                input_name=close[0] if close else (missing or extra)[0],
                expected=expected,
                got=", ".join(extra),
            )
        for check in self._checks:
            if check.name not in feeds:
                raise InputError(
                    f"missing input {check.name!r} ({check.expected}); the model takes: {expected}",
                    input_name=check.name,
                    expected=check.expected,
                    got="nothing",
                )

    def _outputs_for(self, output_names: Sequence[str]) -> list[str]:
        names = [output_names] if isinstance(output_names, str) else list(output_names)
        unknown = [n for n in names if n not in self._output_names]
        if unknown:
            raise UsageError(
                f"unknown output {unknown[0]!r}; the model has: {', '.join(self._output_names)}",
                option="output_names",
            )
        return names

    # -- IO binding ------------------------------------------------------------------
    def io_binding(self, *, device: str = "cpu", device_id: int = 0) -> ort.IOBinding:
        """A fresh ``IOBinding`` with every output bound to ``device`` (e.g. ``"cuda"``,
        ``"dml"``). Bind inputs with ``bind_cpu_input``/``bind_ortvalue_input`` and run it
        with :meth:`run_with_binding`. One binding per thread: bindings are not shared."""
        binding = self._live().io_binding()
        for name in self._output_names:
            binding.bind_output(name, device, device_id)
        return binding

    def run_with_binding(
        self, binding: ort.IOBinding, *, copy_to_cpu: bool = True
    ) -> dict[str, Any]:
        """Run with an IO binding; outputs as numpy arrays (or ``OrtValue``s on the
        device when ``copy_to_cpu=False``)."""
        session = self._live()
        try:
            session.run_with_iobinding(binding)
            values = binding.copy_outputs_to_cpu() if copy_to_cpu else binding.get_outputs()
        except Exception as exc:
            raise translate_ort_error(
                exc, action="run_with_binding()", provider=self._provider
            ) from exc
        return dict(zip(self._output_names, values, strict=True))

    # -- introspection ---------------------------------------------------------------
    def placement(self) -> Placement:
        """Which EP runs which node (recorded at session creation)."""
        from edgeort.hardware.ep import placement
        from edgeort.runtime.placement import PlacedNode, Placement

        session = self._live()  # a closed Model says so, not "did not record"
        try:
            groups = placement(session)
        except Exception as exc:
            raise UsageError(
                "this session did not record its EP graph assignment "
                f"(session.record_ep_graph_assignment_info=1 is needed at creation): {exc}"
            ) from exc
        return Placement(tuple(PlacedNode(ep, *node) for ep, nodes in groups for node in nodes))

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return self._inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return self._outputs

    @property
    def variant(self) -> Variant | None:
        """The bundle :class:`~edgeort.bundle.Variant` this session runs."""
        return self._variant

    @property
    def profile(self) -> Profile | None:
        """The :class:`~edgeort.profiles.Profile` the variant was made for (None if unknown)."""
        if isinstance(self._profile, str):
            from edgeort.profiles import profiles_for

            name = self._profile
            self._profile = next((p for p in profiles_for([name]) if p.name == name), None)
        return self._profile

    @property
    def providers(self) -> list[str]:
        return [str(p) for p in self._live().get_providers()]

    @property
    def session(self) -> ort.InferenceSession:
        return self._live()

    @property
    def reasons(self) -> dict[str, str]:
        """Per variant name: why it was picked, or why it was skipped."""
        return dict(self._reasons)

    def _live(self) -> ort.InferenceSession:
        session = self._session
        if session is None:
            raise UsageError("this Model is closed; load the bundle again")
        return session

    # -- lifetime --------------------------------------------------------------------
    def close(self) -> None:
        """Drop the session. Runs already in flight finish on their own reference."""
        self._session = None

    @property
    def closed(self) -> bool:
        return self._session is None

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        name = getattr(self._variant, "name", None)
        state = "closed" if self._session is None else self._provider
        return f"<edgeort.Model variant={name!r} {state}>"
