"""The console's trends (pure figures, the SVG page) and alerts pages: a viewer sees
both, in English, Spanish and Chinese; the CSP stays without unsafe-inline."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher

from pasarela.config.sections import AlertsConfig
from pasarela.engine.alerts import evaluate
from pasarela.store.monitoring import TrendRow
from pasarela.web.console_auth import Role, hash_password
from pasarela.web.console_trends import PAY_TIME_BINS, bucket_starts, column_chart, trends

from .console_fixtures import BEARER, order


pytestmark = pytest.mark.anyio

NOW = datetime(2026, 12, 2, 15, 30, tzinfo=UTC)  # 10:30 in Lima


def row(status: str, created: timedelta, finished: timedelta, *, method: str = "cash",
        provider: str = "pagoefectivo", network: str | None = "pagoefectivo",
        expires: timedelta | None = None, amount: int = 10_000, fee: int | None = 350
        ) -> TrendRow:
    return TrendRow(provider, method, network, status, NOW - created, NOW - finished,
                    None if expires is None else NOW - expires, amount, "PEN", fee)


def test_buckets_are_lima_hours_and_lima_days():
    hours = bucket_starts(NOW, "hour")
    assert len(hours) == 48
    assert hours[-1].hour == 10
    assert hours[-1].utcoffset() == timedelta(
        hours=-5)
    days = bucket_starts(NOW, "day")
    assert len(days) == 30
    assert (days[-1].day, days[-1].hour) == (2, 0)
    late_evening = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)  # 21:00 on the 2nd in Lima
    assert bucket_starts(late_evening, "day")[-1].day == 2


def test_trends_count_rates_volume_cost_pay_times_and_late_payments():
    rows = [
        row("succeeded", timedelta(hours=3), timedelta(hours=2, minutes=50)),   # 10 min
        row("succeeded", timedelta(hours=5), timedelta(hours=2, minutes=10),    # 2 h 50, late
            expires=timedelta(hours=3)),
        row("expired", timedelta(hours=30), timedelta(hours=2, minutes=30), fee=None),
        row("failed", timedelta(minutes=50), timedelta(minutes=40), method="card",
            provider="bodega.stripe", network="visa"),
        row("pending", timedelta(minutes=5), timedelta(minutes=5)),
        row("succeeded", timedelta(days=40), timedelta(days=40)),  # outside the window
    ]
    found = trends(rows, now=NOW, period="hour")
    assert found.labels[-1] == "10:00"
    cash = found.rates["pagoefectivo · cash · pagoefectivo"]
    assert (cash[-4], cash[-3], cash[-1]) == (1.0, 0.5, None)  # 07:00; 08:00; 10:00 Lima
    assert found.rates["stripe · card · visa"][-2] == 0.0  # 09:00 Lima
    assert sum(found.volume) == 5
    assert found.volume[-1] == 1
    assert found.volume[-2] == 1
    assert found.cost == {"pagoefectivo (PEN)": pytest.approx(100 * 700 / 20_000)}
    assert {k: v for k, v in found.pay_times.items() if v} == {"< 15 min": 1, "1–3 h": 1}
    assert sum(found.late) == 1
    assert found.late[-3] == 1
    assert [label for _, label in PAY_TIME_BINS] == list(found.pay_times)


def test_by_day():
    found = trends([row("succeeded", timedelta(days=3), timedelta(days=2))], now=NOW,
                   period="day")
    assert found.labels[-1] == "02 Dec"
    assert found.rates[
        "pagoefectivo · cash · pagoefectivo"][-3] == 1.0


def test_column_chart_escapes_its_text():
    svg = str(column_chart([1, 3], ["<a>", "b"], title="x & <y>"))
    assert "<a>" not in svg
    assert "&lt;a&gt;" in svg
    assert "x &amp; &lt;y&gt;" in svg
    assert svg.startswith("<svg")
    assert "<script" not in svg
    assert "style=" not in svg


async def test_a_viewer_sees_trends_and_alerts_in_three_languages(pasarela, client, gateway):
    pasarela.store.add_operator("", "vera", int(Role.VIEWER), hash_password(
        "colibrí-de-los-andes-42", PasswordHasher(time_cost=1, memory_cost=1024,
                                                  parallelism=1)))
    for i in range(3):
        p = await pasarela.pay(order(f"t-{i}"), method="cash", idempotency_key=f"t-{i}")
        headers, body = gateway.settle(p.provider_reference)
        await pasarela.handle_webhook("fake", headers, body)
    await pasarela.pay(order("t-waiting"), method="cash", idempotency_key="t-waiting")
    evaluate(pasarela.store, AlertsConfig(notification_delay=timedelta(minutes=1), log=False,
                                          outbox_lag=timedelta(days=1)),
             now=datetime.now(UTC) + timedelta(hours=1))
    signed = await client.post("/admin/login", data={"name": "vera",
                                                     "password": "colibrí-de-los-andes-42"})
    assert signed.status_code == 303
    page = await client.get("/admin/trends")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "unsafe-inline" not in csp
    assert "style-src 'self'" in csp
    assert re.search(r'<span id="volume-total">4</span>', page.text)
    assert page.text.count("<svg") >= 3
    assert "<script" not in page.text
    assert ' style="' not in page.text
    daily = await client.get("/admin/trends?period=day")
    assert "Last 30 days, by day</strong>" in daily.text
    alerts = await client.get("/admin/alerts")
    assert 'data-kind="notifications_silent"' in alerts.text
    assert '<span id="firing-count">1</span>' in alerts.text
    zh = await client.get("/admin/alerts?lang=zh-CN")
    assert '<html lang="zh-CN">' in zh.text
    assert "正在触发" in zh.text
    es = await client.get("/admin/trends", headers={"Accept-Language": "es-PE,es;q=0.9"})
    assert '<html lang="es-PE">' in es.text
    assert "Tendencias" in es.text
    assert "Tiempo para pagar un CIP" in es.text


async def test_trends_and_alerts_need_a_signed_in_operator(client):
    for path in ("/admin/trends", "/admin/alerts"):
        assert (await client.get(path)).status_code == 401
        assert (await client.get(path, headers=BEARER)).status_code == 200


async def test_another_merchants_alerts_are_not_shown(pasarela, client):
    from pasarela.store.monitoring import NewAlert, record_alerts

    record_alerts(pasarela.store, [NewAlert("bodega", "outbox_lag", "outbox", "warning", 1.0,
                                            0.0, "bodega's")], now=datetime.now(UTC))
    page = await client.get("/admin/alerts", headers=BEARER)
    assert "bodega&#39;s" not in page.text
    assert "bodega's" not in page.text
    assert 'id="no-alerts"' in page.text


