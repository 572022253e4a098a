"""The redaction processor: secrets removed, personal data masked."""

from __future__ import annotations

import structlog
from structlog.testing import capture_logs

from pasarela.logs import redact


def test_redact_masks_and_removes():
    out = redact(None, "info", {
        "event": "paid by rosa@example.pe",
        "api_key": "sk_live_abc",
        "phone": "+51987654321",
        "email": "rosa@example.pe",
        "document": ["DNI", "45678912"],
        "nested": {"secret_key": "s3cr3t", "userPhone": "987654321"},
        "provider": "pagoefectivo",
    })
    text = repr(out)
    for secret in ("sk_live_abc", "s3cr3t", "45678912", "987654321", "rosa@example.pe"):
        assert secret not in text
    assert out["provider"] == "pagoefectivo"
    assert out["phone"] == "***321"
    assert out["email"] == "r***@example.pe"


def test_library_logs_are_key_value_events():
    with capture_logs(processors=[redact]) as logs:
        structlog.get_logger("pasarela").info("payment_created", payment_id="p1",
                                              email="rosa@example.pe")
    assert logs == [{"event": "payment_created", "payment_id": "p1",
                     "email": "r***@example.pe", "log_level": "info"}]
