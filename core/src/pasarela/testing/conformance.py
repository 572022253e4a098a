"""``ProviderConformance``: the contract test suite every adapter subclasses.

An adapter's ``tests/test_conformance.py``::

    from pasarela.testing.conformance import ProviderConformance

    class TestConformance(ProviderConformance):
        provider_class = MyProvider
        documented_error_codes = {"111", "112", ...}   # the provider's documented codes

        @pytest.fixture
        def settings(self): ...            # a settings instance pointing at the sandbox
        @pytest.fixture
        def client(self): ...              # an httpx.Client that reaches the sandbox
        @pytest.fixture
        def create_request(self): ...      # a CreateRequest the sandbox accepts
        @pytest.fixture
        def signed_webhook(self, provider): ...  # (headers, body, now) the provider accepts
        @pytest.fixture
        def invalid_request(self): ...     # a CreateRequest its field rules refuse
        @pytest.fixture
        def webhook_cases(self): ...       # [(headers, body, now, Status | FETCH)], each type
        @pytest.fixture
        def wrong_settings(self): ...      # settings the sandbox refuses to authenticate
        @pytest.fixture
        def sandbox_errors(self): ...      # [(name, Operation, make(provider), ErrorCode)]

The suite checks the entry point (installed, named like the provider, registering
it), that the declared capabilities are coherent, that every declared operation
works against the sandbox and every undeclared one is refused, that webhook
verification rejects tampered bytes, and that the error table covers the
provider's documented codes. A provider declaring ``GET_REFUND`` answers for a refund
by its reference and by our refund id (set :attr:`ProviderConformance.finds_refunds_by_id`
to False when the provider keeps nothing of our id), and answers ``pending``, never
``failed``, for a refund it does not know. Against the sandbox it then drives a field-validation
refusal, each webhook type to the status it reports, wrong credentials to an
authentication error, and each error-table entry the sandbox can produce to its
normalized code.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from importlib import metadata
from typing import Any, ClassVar, Final

import attrs
import httpx
import pytest
from ulid import ULID

from pasarela.engine.calls import run_flow
from pasarela.engine.steps import drive
from pasarela.errors import (
    AuthenticationError,
    ErrorCode,
    PasarelaError,
    ProviderValidationError,
    SignatureInvalidError,
    UnsupportedError,
    WebhookError,
)
from pasarela.lifecycle import Status
from pasarela.model import Method, Payment, Refund, RefundStatus
from pasarela.money import Money, currency_exponent
from pasarela.plugins import ENTRY_POINT_GROUP, get_plugin_manager
from pasarela.provider import CreateRequest, Operation, Provider, ProviderSettings, WebhookHeaders


__all__ = ["FETCH", "ProviderConformance"]

#: In ``webhook_cases``: the delivery carries no status to trust; the core fetches it.
FETCH: Final = "fetch"


class ProviderConformance:
    """Subclass it, set ``provider_class``, and provide the fixtures above."""

    provider_class: ClassVar[type[Provider]]
    #: The provider's documented error codes; each must be in ``error_codes``.
    documented_error_codes: ClassVar[frozenset[str] | set[str]] = frozenset()
    #: False only for a provider shipped inside another distribution (the fake).
    has_entry_point: ClassVar[bool] = True
    #: The provider finds a refund by our refund id (metadata, an idempotency key) when
    #: it has no reference yet; False: ``get_refund`` then only answers ``pending``.
    finds_refunds_by_id: ClassVar[bool] = True

    @pytest.fixture
    def provider(self, settings: ProviderSettings) -> Provider:
        return self.provider_class(settings)

    # --- distribution ------------------------------------------------------------

    def test_entry_point_is_named_like_the_provider(self) -> None:
        """An entry point in the ``pasarela`` group has the provider's name and
        registers it through the plugin hook."""
        if not self.has_entry_point:
            pytest.skip(f"{self.provider_class.name} is registered by module, not entry point")
        points = {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
        name = self.provider_class.name
        assert name in points, f"no entry point {name!r} in group {ENTRY_POINT_GROUP!r}"
        manager = get_plugin_manager(load_entrypoints=False)
        manager.register(points[name].load(), name=name)
        assert manager.providers().get(name) is self.provider_class

    # --- capabilities ----------------------------------------------------------------

    def test_capabilities_are_coherent(self) -> None:
        cls = self.provider_class
        assert cls.name.isidentifier()
        assert cls.name == cls.name.lower()
        assert cls.display_name
        assert cls.methods
        assert all(isinstance(m, Method) for m in cls.methods)
        assert cls.currencies
        for currency in cls.currencies:
            currency_exponent(currency)
        for country in cls.countries:
            assert len(country) == 2
            assert country.isupper()
        for currency, (low, high) in cls.limits.items():
            assert currency in cls.currencies, f"limit for undeclared currency {currency}"
            if low is not None and high is not None:
                assert 0 <= low <= high
        assert Operation.CREATE in cls.operations
        if Operation.GET_MANY in cls.operations:
            assert Operation.GET in cls.operations, "GET_MANY falls back to GET: declare both"
            assert cls.get_many_limit >= 1
        assert cls.retry_safe <= cls.operations, "retry_safe names undeclared operations"
        assert issubclass(cls.settings_class, ProviderSettings)
        assert attrs.has(cls.settings_class)
        if cls.default_expiry is not None:
            assert cls.default_expiry.total_seconds() > 0

    def test_secret_settings_are_hidden_from_repr(self, settings: ProviderSettings) -> None:
        for secret in settings.secret_values():
            assert secret not in repr(settings)

    def test_error_table_covers_documented_codes(self) -> None:
        missing = set(self.documented_error_codes) - set(self.provider_class.error_codes)
        assert not missing, f"error table lacks documented codes {sorted(missing)}"

    # --- operations ----------------------------------------------------------------

    def _run(self, provider: Provider, client: httpx.Client, operation: Operation,
             make: Any) -> Any:
        return drive(run_flow(provider, operation, make, sleep_scale=0), client)

    def _payment(self, request: CreateRequest, reported: Any, provider: Provider) -> Payment:
        now = request.order.expires_at or datetime.now().astimezone()
        return Payment(
            id=request.payment_id, order_reference=request.order.reference,
            idempotency_key=request.idempotency_key, provider=provider.name,
            method=request.method, amount=request.amount, status=reported.status, version=2,
            created_at=now, updated_at=now, provider_reference=reported.reference,
            order=request.order,
        )

    def test_create_then_get(self, provider: Provider, client: httpx.Client,
                             create_request: CreateRequest) -> None:
        reported = self._run(provider, client, Operation.CREATE,
                             lambda: provider.create(create_request))
        assert reported.status in set(Status) - {Status.CREATED}
        assert reported.reference
        if reported.status is Status.PENDING:
            assert reported.next_action is not None, "a pending payment needs a next action"
        if Operation.GET in provider.operations:
            payment = self._payment(create_request, reported, provider)
            again = self._run(provider, client, Operation.GET, lambda: provider.get(payment))
            assert again.reference == reported.reference
            assert again.status is reported.status

    def test_get_many_as_declared(self, provider: Provider, client: httpx.Client,
                                  create_request: CreateRequest) -> None:
        """Two payments asked about in one flow: each reported under its reference,
        as ``get`` reports it, and nothing the core did not ask about."""
        if Operation.GET_MANY not in provider.operations:
            with pytest.raises(UnsupportedError):
                provider.get_many([])
            return
        second = attrs.evolve(create_request, payment_id=str(ULID()),
                              idempotency_key=f"{create_request.idempotency_key}-2")
        payments = []
        for request in (create_request, second):
            reported = self._run(provider, client, Operation.CREATE,
                                 lambda request=request: provider.create(request))
            payments.append(self._payment(request, reported, provider))
        assert payments[0].provider_reference != payments[1].provider_reference
        answer = self._run(provider, client, Operation.GET_MANY,
                           lambda: provider.get_many(payments))
        assert set(answer) == {p.provider_reference for p in payments}
        for payment in payments:
            assert payment.provider_reference is not None
            one = self._run(provider, client, Operation.GET, lambda p=payment: provider.get(p))
            many = answer[payment.provider_reference]
            assert many.reference == payment.provider_reference
            assert many.status is one.status is payment.status

    def test_cancel_as_declared(self, provider: Provider, client: httpx.Client,
                                create_request: CreateRequest) -> None:
        reported = self._run(provider, client, Operation.CREATE,
                             lambda: provider.create(create_request))
        payment = self._payment(create_request, reported, provider)
        if Operation.CANCEL not in provider.operations:
            with pytest.raises(UnsupportedError):
                provider.cancel(payment)
            return
        if reported.status is not Status.PENDING:
            pytest.skip("the sample request does not leave the payment pending")
        canceled = self._run(provider, client, Operation.CANCEL, lambda: provider.cancel(payment))
        assert canceled.status is Status.CANCELED

    def test_refund_as_declared(self, provider: Provider, client: httpx.Client,
                                create_request: CreateRequest) -> None:
        if Operation.REFUND not in provider.operations:
            with pytest.raises(UnsupportedError):
                provider.refund(self._payment(create_request, _Stub(), provider),
                                Money(100, next(iter(provider.currencies))), refund_id="r",
                                reason="")
            return
        reported = self._run(provider, client, Operation.CREATE,
                             lambda: provider.create(create_request))
        if reported.status is not Status.SUCCEEDED:
            pytest.skip("the sample request does not succeed synchronously")
        payment = self._payment(create_request, reported, provider)
        part = Money(max(1, create_request.amount.minor // 2), create_request.amount.currency)
        refund = self._run(provider, client, Operation.REFUND,
                           lambda: provider.refund(payment, part, refund_id="re-conf-1",
                                                   reason="solicitud_comprador"))
        assert refund.status.value in {"pending", "succeeded"}

    def test_get_refund_as_declared(self, provider: Provider, client: httpx.Client,
                                    create_request: CreateRequest) -> None:
        """A refund made, then asked about by its reference and by our refund id, gives
        its state; a refund the provider does not know is ``pending``, never ``failed``
        (the resolver asks this for refunds whose answer was lost)."""
        if Operation.GET_REFUND not in provider.operations:
            with pytest.raises(UnsupportedError):
                provider.get_refund(self._payment(create_request, _Stub(), provider),
                                    None)  # type: ignore[arg-type]
            pytest.skip(f"{provider.name} declares no GET_REFUND: a refund whose answer was "
                        "lost stays pending and is listed for an operator")
        assert Operation.REFUND in provider.operations, "GET_REFUND without REFUND"
        reported = self._run(provider, client, Operation.CREATE,
                             lambda: provider.create(create_request))
        if reported.status is not Status.SUCCEEDED:
            pytest.skip("the sample request does not succeed synchronously")
        payment = self._payment(create_request, reported, provider)
        part = Money(max(1, create_request.amount.minor // 2), create_request.amount.currency)
        ours = Refund(id=str(ULID()), payment_id=payment.id, amount=part,
                      status=RefundStatus.PENDING, created_at=payment.created_at,
                      reason="solicitud_comprador")
        made = self._run(provider, client, Operation.REFUND,
                         lambda: provider.refund(payment, part, refund_id=ours.id,
                                                 reason=ours.reason))
        assert made.reference, "a refund the provider made has its reference"
        known = attrs.evolve(ours, provider_reference=made.reference)
        by_reference = self._run(provider, client, Operation.GET_REFUND,
                                 lambda: provider.get_refund(payment, known))
        assert by_reference.reference == made.reference
        assert by_reference.status is made.status
        lost = attrs.evolve(ours, provider_reference=None)
        by_id = self._run(provider, client, Operation.GET_REFUND,
                          lambda: provider.get_refund(payment, lost))
        if self.finds_refunds_by_id:
            assert by_id.reference == made.reference
            assert by_id.status is made.status
        else:
            assert by_id.status is RefundStatus.PENDING
        never = Refund(id=str(ULID()), payment_id=payment.id, amount=part,
                       status=RefundStatus.PENDING, created_at=payment.created_at)
        unknown = self._run(provider, client, Operation.GET_REFUND,
                            lambda: provider.get_refund(payment, never))
        assert unknown.status is RefundStatus.PENDING
        assert unknown.reference in (None, ""), "a refund never made has no reference"

    # --- webhooks -------------------------------------------------------------------

    def test_webhook_accepts_genuine_and_rejects_tampered_bytes(
        self, provider: Provider, signed_webhook: tuple[Mapping[str, str], bytes, datetime]
    ) -> None:
        if Operation.WEBHOOK not in provider.operations:
            pytest.skip("the provider declares no webhooks")
        raw_headers, body, now = signed_webhook
        # Headers reach adapters as the core passes them: case-insensitive, lower-cased.
        headers = WebhookHeaders({k.upper(): v for k, v in raw_headers.items()})
        events = provider.parse_webhook(headers, body, now=now)
        assert events
        assert all(e.event_id for e in events)
        tampered = bytearray(body)
        index = max(0, len(tampered) // 2)
        tampered[index] = (tampered[index] + 1) % 256
        with pytest.raises((SignatureInvalidError, WebhookError)):
            provider.parse_webhook(headers, bytes(tampered), now=now)

    def test_undeclared_operations_refuse(self, provider: Provider) -> None:
        """Undeclared operations refuse with the hierarchy's UnsupportedError."""
        now = datetime.now().astimezone()
        calls: dict[Operation, Any] = {
            Operation.CONFIRM: lambda: provider.confirm(None, {}),  # type: ignore[arg-type]
            Operation.GET: lambda: provider.get(None),  # type: ignore[arg-type]
            Operation.GET_MANY: lambda: provider.get_many([]),
            Operation.CANCEL: lambda: provider.cancel(None),  # type: ignore[arg-type]
            Operation.REFUND: lambda: provider.refund(None, None, refund_id="r",  # type: ignore[arg-type]
                                                      reason=""),
            Operation.GET_REFUND: lambda: provider.get_refund(None, None),  # type: ignore[arg-type]
            Operation.SETTLEMENTS: lambda: provider.settlements(now, now),
            Operation.WEBHOOK: lambda: provider.parse_webhook(WebhookHeaders(), b"", now=now),
        }
        for operation, call in calls.items():
            if operation not in provider.operations:
                with pytest.raises(UnsupportedError):
                    call()


    # --- refusals and reports, driven against the sandbox -------------------------------

    def test_field_validation_refuses_naming_the_field(
        self, provider: Provider, client: httpx.Client, invalid_request: CreateRequest
    ) -> None:
        """The provider's field rules refuse *invalid_request* with a
        ProviderValidationError naming the field, having created nothing: before any
        I/O (``check_request``) or, failing that, from the sandbox's answer."""
        try:
            provider.check_request(invalid_request)
        except ProviderValidationError as exc:
            refused = exc
        else:
            with pytest.raises(ProviderValidationError) as info:
                self._run(provider, client, Operation.CREATE,
                          lambda: provider.create(invalid_request))
            refused = info.value
        assert refused.fields, "name the refused field in ProviderValidationError.fields"
        assert refused.created_nothing
        assert refused.code is ErrorCode.VALIDATION

    def test_each_webhook_type_maps_to_its_status(
        self, provider: Provider,
        webhook_cases: list[tuple[Mapping[str, str], bytes, datetime, Any]],
    ) -> None:
        if Operation.WEBHOOK not in provider.operations:
            pytest.skip("the provider declares no webhooks")
        assert webhook_cases, "give one case per webhook type the provider sends"
        for raw_headers, body, now, expected in webhook_cases:
            events = provider.parse_webhook(WebhookHeaders(raw_headers), body, now=now)
            assert events, f"no event parsed from {body[:80]!r}"
            for event in events:
                if expected == FETCH:
                    assert event.verify_by_fetch, event.type
                else:
                    assert event.status is expected, (event.type, event.status, expected)

    def test_wrong_credentials_are_an_authentication_error(
        self, client: httpx.Client, wrong_settings: ProviderSettings,
        create_request: CreateRequest,
    ) -> None:
        provider = self.provider_class(wrong_settings)
        operation, make = ((Operation.PROBE, provider.probe)
                           if Operation.PROBE in provider.operations
                           else (Operation.CREATE, lambda: provider.create(create_request)))
        with pytest.raises(AuthenticationError) as refused:
            self._run(provider, client, operation, make)
        assert refused.value.code is ErrorCode.AUTHENTICATION
        assert refused.value.created_nothing
        for secret in wrong_settings.secret_values():
            assert secret not in str(refused.value)

    def test_sandbox_errors_map_through_the_error_table(
        self, provider: Provider, client: httpx.Client,
        sandbox_errors: list[tuple[str, Operation, Any, ErrorCode]],
    ) -> None:
        """Each error the sandbox can produce comes back with its normalized code, the
        one the adapter's error table gives the provider's raw code."""
        assert sandbox_errors, "give at least one error the sandbox produces"
        for name, operation, make, code in sandbox_errors:
            with pytest.raises(PasarelaError) as raised:
                self._run(provider, client, operation, lambda make=make: make(provider))
            error = raised.value
            assert error.code is code, f"{name}: {error!r}"
            raw = error.provider_code
            if raw is not None and raw in provider.error_codes:
                assert provider.error_codes[raw] is code, f"{name}: table says otherwise"


class _Stub:
    status = Status.SUCCEEDED
    reference = "stub"


