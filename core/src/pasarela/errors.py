"""The one error hierarchy of pasarela.

Every error carries a normalized ``code``, a ``retryable`` flag, the provider's raw
code and message where there was one, and a customer-safe message in Spanish (es-PE)
and English (``customer_message("es")``)::

    PasarelaError
    ├── ValidationError (ValueError)            validation · field names the input
    ├── ConfigurationError                      configuration · path names the setting
    │   └── ProviderNotFoundError (LookupError) configuration
    ├── PluginError                             plugin_load
    │   ├── PluginLoadError                     plugin_load
    │   └── DuplicateProviderError              plugin_load
    ├── NotFoundError (LookupError)             not_found
    ├── IdempotencyConflictError                idempotency_conflict
    ├── PaymentInProgressError                  payment_in_progress (retryable, retry_after)
    ├── IllegalTransitionError                  illegal_transition
    ├── ConcurrencyConflictError                concurrency_conflict (retryable)
    ├── RefundError                             refund_exceeds_capture · refund_not_allowed
    ├── WebhookError                            malformed_webhook
    │   └── SignatureInvalidError               signature_invalid
    └── ProviderError                           provider_error
        ├── AuthenticationError                 authentication
        ├── ProviderUnavailableError            provider_unavailable (retryable)
        │   └── RateLimitedError                rate_limited (retryable, retry_after)
        ├── UnknownOutcomeError                 timeout_unknown_outcome
        ├── ProviderValidationError             validation (fields named by the provider)
        ├── UnsupportedError                    unsupported_currency · unsupported_method ·
        │                                       amount_out_of_range · unsupported_operation
        └── DeclinedError                       declined · insufficient_funds · expired ·
                                                card_declined · invalid_code · fraud_suspected

``ProviderError.created_nothing`` is True only when the failed attempt provably
created nothing at the provider (refused before sending, connection refused, or an
answer the provider documents as "not created"); routing fails over only then.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar


__all__ = [
    "AuthenticationError",
    "ConcurrencyConflictError",
    "ConfigurationError",
    "DeclinedError",
    "DuplicateProviderError",
    "ErrorCode",
    "IdempotencyConflictError",
    "IllegalTransitionError",
    "NotFoundError",
    "PasarelaError",
    "PaymentInProgressError",
    "PluginError",
    "PluginLoadError",
    "ProviderError",
    "ProviderNotFoundError",
    "ProviderUnavailableError",
    "ProviderValidationError",
    "RateLimitedError",
    "RefundError",
    "SignatureInvalidError",
    "UnknownOutcomeError",
    "UnsupportedError",
    "ValidationError",
    "WebhookError",
]


class ErrorCode(StrEnum):
    """Normalized error codes, stable across providers."""

    VALIDATION = "validation"
    CONFIGURATION = "configuration"
    PLUGIN_LOAD = "plugin_load"
    AUTHENTICATION = "authentication"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    TIMEOUT_UNKNOWN_OUTCOME = "timeout_unknown_outcome"
    RATE_LIMITED = "rate_limited"
    DECLINED = "declined"
    CARD_DECLINED = "card_declined"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    FRAUD_SUSPECTED = "fraud_suspected"
    INVALID_CODE = "invalid_code"
    EXPIRED = "expired"
    AMOUNT_OUT_OF_RANGE = "amount_out_of_range"
    UNSUPPORTED_CURRENCY = "unsupported_currency"
    UNSUPPORTED_METHOD = "unsupported_method"
    UNSUPPORTED_OPERATION = "unsupported_operation"
    NOT_FOUND = "not_found"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    PAYMENT_IN_PROGRESS = "payment_in_progress"
    SIGNATURE_INVALID = "signature_invalid"
    MALFORMED_WEBHOOK = "malformed_webhook"
    ILLEGAL_TRANSITION = "illegal_transition"
    CONCURRENCY_CONFLICT = "concurrency_conflict"
    REFUND_EXCEEDS_CAPTURE = "refund_exceeds_capture"
    REFUND_NOT_ALLOWED = "refund_not_allowed"
    PROVIDER_ERROR = "provider_error"


# Customer-safe messages: what a checkout page may show. Never provider internals.
_CUSTOMER_MESSAGES: dict[ErrorCode, tuple[str, str]] = {
    ErrorCode.VALIDATION: (
        "Revisa los datos ingresados e inténtalo de nuevo.",
        "Please check the details you entered and try again.",
    ),
    ErrorCode.DECLINED: (
        "El pago fue rechazado. Intenta con otro medio de pago.",
        "The payment was declined. Please try another payment method.",
    ),
    ErrorCode.CARD_DECLINED: (
        "Tu tarjeta fue rechazada. Comunícate con tu banco o usa otra tarjeta.",
        "Your card was declined. Contact your bank or use another card.",
    ),
    ErrorCode.INSUFFICIENT_FUNDS: (
        "Fondos insuficientes. Usa otro medio de pago.",
        "Insufficient funds. Please use another payment method.",
    ),
    ErrorCode.FRAUD_SUSPECTED: (
        "No pudimos procesar el pago. Usa otro medio de pago.",
        "We could not process the payment. Please use another payment method.",
    ),
    ErrorCode.INVALID_CODE: (
        "El código de aprobación es incorrecto o venció. Genera uno nuevo en tu app.",
        "The approval code is wrong or has expired. Generate a new one in your app.",
    ),
    ErrorCode.EXPIRED: (
        "El plazo para pagar venció. Genera un nuevo pago.",
        "The time to pay has run out. Please start a new payment.",
    ),
    ErrorCode.AMOUNT_OUT_OF_RANGE: (
        "El monto no está permitido para este medio de pago.",
        "This amount is not allowed for this payment method.",
    ),
    ErrorCode.UNSUPPORTED_CURRENCY: (
        "Este medio de pago no acepta esta moneda.",
        "This payment method does not accept this currency.",
    ),
    ErrorCode.UNSUPPORTED_METHOD: (
        "Este medio de pago no está disponible.",
        "This payment method is not available.",
    ),
    ErrorCode.RATE_LIMITED: (
        "Hay muchas solicitudes en este momento. Inténtalo en unos segundos.",
        "There are too many requests right now. Please try again in a few seconds.",
    ),
    ErrorCode.PAYMENT_IN_PROGRESS: (
        "Tu pago se está procesando. Espera unos segundos; no lo repitas.",
        "Your payment is being processed. Wait a few seconds; do not pay again.",
    ),
    ErrorCode.TIMEOUT_UNKNOWN_OUTCOME: (
        "Estamos confirmando tu pago. No lo repitas; te avisaremos el resultado.",
        "We are confirming your payment. Do not pay again; we will tell you the result.",
    ),
}
_GENERIC = (
    "No pudimos completar la operación. Inténtalo más tarde.",
    "We could not complete the operation. Please try again later.",
)


class PasarelaError(Exception):
    """Base of every pasarela error.

    Attributes:
        code: the normalized :class:`ErrorCode`.
        retryable: whether the same call may succeed if repeated later.
        provider: the provider's name, where one was involved.
        provider_code: the provider's raw error code.
        provider_message: the provider's raw message (merchant-facing, never shown to
            customers).
        http_status: the HTTP status of the provider's answer, where there was one.
        payment_id: our id of the payment the error concerns, where there is one
            (the core sets it when an operation on a stored payment fails).
    """

    default_code: ClassVar[ErrorCode] = ErrorCode.PROVIDER_ERROR
    default_retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode | None = None,
        retryable: bool | None = None,
        provider: str | None = None,
        provider_code: str | None = None,
        provider_message: str | None = None,
        http_status: int | None = None,
        payment_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.retryable = self.default_retryable if retryable is None else retryable
        self.provider = provider
        self.provider_code = provider_code
        self.provider_message = provider_message
        self.http_status = http_status
        self.payment_id = payment_id

    def customer_message(self, language: str = "es") -> str:
        """A message safe to show the paying customer, in ``es`` or ``en``."""
        es, en = _CUSTOMER_MESSAGES.get(self.code, _GENERIC)
        return en if language.lower().startswith("en") else es

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": type(self).__name__,
            "code": str(self.code),
            "message": self.message,
            "retryable": self.retryable,
            "provider": self.provider,
            "provider_code": self.provider_code,
            "provider_message": self.provider_message,
            "payment_id": self.payment_id,
        }

    def __str__(self) -> str:
        prefix = f"[{self.provider}] " if self.provider else ""
        raw = f" (provider code {self.provider_code})" if self.provider_code else ""
        return f"{prefix}{self.message}{raw}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={str(self.code)!r})"


class ValidationError(PasarelaError, ValueError):
    """Bad input. ``field`` names it with a dotted path (``customer.document``)."""

    default_code = ErrorCode.VALIDATION

    def __init__(self, message: str, *, field: str, **kwargs: Any) -> None:
        super().__init__(f"{field}: {message}", **kwargs)
        self.field = field
        self.reason = message


class ConfigurationError(PasarelaError):
    """The configuration is wrong. ``path`` names the setting (``providers.x.key``)."""

    default_code = ErrorCode.CONFIGURATION

    def __init__(self, message: str, *, path: str | None = None, **kwargs: Any) -> None:
        super().__init__(f"{path}: {message}" if path else message, **kwargs)
        self.path = path


class ProviderNotFoundError(ConfigurationError, LookupError):
    """No provider of that name is installed or configured."""


class PluginError(PasarelaError):
    default_code = ErrorCode.PLUGIN_LOAD


class PluginLoadError(PluginError):
    """A plugin failed to import or register. ``plugin`` names it."""

    def __init__(self, message: str, *, plugin: str, distribution: str | None = None) -> None:
        where = f"{plugin} (from {distribution})" if distribution else plugin
        super().__init__(f"plugin {where}: {message}")
        self.plugin = plugin
        self.distribution = distribution


class DuplicateProviderError(PluginError):
    """Two plugins registered a provider under the same name."""


class NotFoundError(PasarelaError, LookupError):
    default_code = ErrorCode.NOT_FOUND


class IdempotencyConflictError(PasarelaError):
    """The same idempotency key was used with different parameters."""

    default_code = ErrorCode.IDEMPOTENCY_CONFLICT


class PaymentInProgressError(PasarelaError):
    """Another call with the same idempotency key is creating the payment right now.

    ``payment_id`` names it; ask again after ``retry_after`` seconds (the same key then
    returns the payment as its provider left it, or, if that create was refused before
    the provider executed it, starts afresh).
    """

    default_code = ErrorCode.PAYMENT_IN_PROGRESS
    default_retryable = True

    def __init__(self, message: str, *, retry_after: float = 1.0, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class IllegalTransitionError(PasarelaError):
    """A status change the lifecycle table does not allow."""

    default_code = ErrorCode.ILLEGAL_TRANSITION

    def __init__(self, message: str, *, source: str, target: str, payment_id: str | None = None):
        super().__init__(message, payment_id=payment_id)
        self.source = source
        self.target = target


class ConcurrencyConflictError(PasarelaError):
    """Another writer changed the payment first; reload and retry."""

    default_code = ErrorCode.CONCURRENCY_CONFLICT
    default_retryable = True


class RefundError(PasarelaError):
    default_code = ErrorCode.REFUND_NOT_ALLOWED


class WebhookError(PasarelaError):
    """A delivery that cannot be applied: malformed, forged or stale."""

    default_code = ErrorCode.MALFORMED_WEBHOOK


class SignatureInvalidError(WebhookError):
    default_code = ErrorCode.SIGNATURE_INVALID


class ProviderError(PasarelaError):
    """A provider answered with an error or could not be reached."""

    default_code = ErrorCode.PROVIDER_ERROR

    def __init__(
        self,
        message: str,
        *,
        created_nothing: bool = False,
        provider_reference: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.created_nothing = created_nothing
        #: The provider's id of what the failed call did create (a declined charge).
        self.provider_reference = provider_reference


class AuthenticationError(ProviderError):
    default_code = ErrorCode.AUTHENTICATION


class ProviderUnavailableError(ProviderError):
    default_code = ErrorCode.PROVIDER_UNAVAILABLE
    default_retryable = True


class RateLimitedError(ProviderUnavailableError):
    default_code = ErrorCode.RATE_LIMITED

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class UnknownOutcomeError(ProviderError):
    """The request may have reached the provider but its answer was lost."""

    default_code = ErrorCode.TIMEOUT_UNKNOWN_OUTCOME


class ProviderValidationError(ProviderError):
    """The provider refused the request's data; ``fields`` maps field to reason."""

    default_code = ErrorCode.VALIDATION

    def __init__(self, message: str, *, fields: dict[str, str] | None = None, **kwargs: Any):
        kwargs.setdefault("created_nothing", True)
        super().__init__(message, **kwargs)
        self.fields = dict(fields or {})


class UnsupportedError(ProviderError):
    """The provider cannot take this currency, method, amount or operation."""

    default_code = ErrorCode.UNSUPPORTED_OPERATION

    def __init__(self, message: str, **kwargs: Any) -> None:
        kwargs.setdefault("created_nothing", True)
        super().__init__(message, **kwargs)


class DeclinedError(ProviderError):
    """A business outcome: the provider refused to move the money."""

    default_code = ErrorCode.DECLINED

    def __init__(self, message: str, *, decline_code: str | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.decline_code = decline_code
