"""Reading pasarela.toml: structure, conversions, env: references and error paths."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import attrs
import pytest

from pasarela.config import (
    DEFAULT_STORE_URL,
    CheckoutConfig,
    Config,
    EventsConfig,
    InvalidConfigError,
    PluginsConfig,
    RouteConfig,
    StoreConfig,
    check_config,
    load_config,
    parse_duration,
    structure_settings,
)
from pasarela.errors import ConfigurationError, ValidationError
from pasarela.money import Money
from pasarela.provider import ProviderSettings
from pasarela.secret import Secret


class Mode(StrEnum):
    REDIRECT = "redirect"
    EMBEDDED = "embedded"


def _positive(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value <= 0:
        raise ValidationError("must be positive", field=attribute.name)


@attrs.frozen(kw_only=True)
class PagoSettings(ProviderSettings):
    access_key: str = attrs.field(repr=False, metadata={"secret": True})
    secret_key: str = attrs.field(repr=False, metadata={"secret": True})
    service_id: int = attrs.field(validator=_positive)
    sandbox_pay: bool = False
    mode: Mode = Mode.REDIRECT
    channel: Literal["web", "app"] = "web"
    ratio: float = 1.0
    tags: list[str] = attrs.field(factory=list)
    extra_fees: Mapping[str, Money] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class StripeSettings(ProviderSettings):
    api_key: str = attrs.field(repr=False, metadata={"secret": True})


SECRET_ACCESS = "AK-live-5f9d2c7e1b"
SECRET_KEY = "SK-live-a81c44e0d3"
WEBHOOK_SECRET = "whsec_9b1e77aa0c"
ENV = {
    "PAGOEFECTIVO_ACCESS_KEY": SECRET_ACCESS,
    "PAGOEFECTIVO_SECRET_KEY": SECRET_KEY,
    "STRIPE_SECRET_KEY": "sk_test_51Hx0000",
    "DATABASE_URL": "postgresql://pasarela:db-pass-7731@db.internal:5432/pasarela",
}

GOOD = """
[store]
url = "sqlite:///pasarela.db"

[plugins]
modules = ["pasarela.testing.fake"]

[checkout]
preference = ["pagoefectivo", "stripe"]

[events]
dispatch = "worker"

[providers.pagoefectivo]
environment = "sandbox"
base_url = "http://127.0.0.1:8801"
access_key = "env:PAGOEFECTIVO_ACCESS_KEY"
secret_key = "env:PAGOEFECTIVO_SECRET_KEY"
service_id = 1028
expiry = "48h"
min_amount = "PEN 1.00"
max_amount = "PEN 1,500"
fees = { percent = "3.5", fixed = "PEN 0.50", igv = true }
webhook_secrets = "whsec_9b1e77aa0c"

[providers.stripe]
api_key = "env:STRIPE_SECRET_KEY"
webhook_secrets = ["whsec_new_0001", "whsec_old_0002"]
timeout = 5

[[routes]]
name = "cash for mid-size orders"
when = { country = "PE", method = "cash", amount = { max = "PEN 1500" } }
use = ["pagoefectivo"]

[[routes]]
name = "cards"
when = { method = "card" }
use = ["stripe"]
strategy = "ordered"
"""

CLASSES: dict[str, type[ProviderSettings]] = {
    "pagoefectivo": PagoSettings,
    "stripe": StripeSettings,
}


def write(tmp_path: Path, text: str, name: str = "pasarela.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def errors_of(excinfo: pytest.ExceptionInfo[InvalidConfigError]) -> list[str]:
    return excinfo.value.errors


def settings_errors(table: Mapping[str, Any], cls: type[ProviderSettings] = PagoSettings,
                    env: Mapping[str, str] | None = None) -> list[str]:
    with pytest.raises(InvalidConfigError) as info:
        structure_settings("pagoefectivo", table, cls, env=ENV if env is None else env)
    return info.value.errors


PAGO_OK: dict[str, Any] = {"access_key": "a" * 8, "secret_key": "b" * 8, "service_id": 1}


# --- a good file -------------------------------------------------------------------------


def test_good_file_is_structured(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    config = load_config(path, env=ENV)
    assert config.source == str(path)
    # A relative SQLite path is the config file's folder's, not the current folder's.
    assert config.store == StoreConfig(url=f"sqlite:///{(tmp_path / 'pasarela.db').resolve()}")
    assert config.plugins == PluginsConfig(modules=("pasarela.testing.fake",))
    assert config.checkout == CheckoutConfig(preference=("pagoefectivo", "stripe"))
    assert config.events == EventsConfig(dispatch="worker")
    assert config.routes == (
        RouteConfig(
            name="cash for mid-size orders",
            when={"country": "PE", "method": "cash", "amount": {"max": "PEN 1500"}},
            use=("pagoefectivo",),
        ),
        RouteConfig(name="cards", when={"method": "card"}, use=("stripe",), strategy="ordered"),
    )
    assert set(config.providers) == {"pagoefectivo", "stripe"}
    # Provider tables stay raw until the provider class is known.
    assert config.providers["pagoefectivo"]["access_key"] == "env:PAGOEFECTIVO_ACCESS_KEY"

    pago = config.provider_settings("pagoefectivo", PagoSettings)
    assert isinstance(pago, PagoSettings)
    assert pago.access_key == SECRET_ACCESS
    assert pago.secret_key == SECRET_KEY
    assert pago.service_id == 1028
    assert pago.expiry == timedelta(hours=48)
    assert pago.min_amount == Money.of("1.00", "PEN")
    assert pago.max_amount == Money.of("1500", "PEN")
    assert pago.fees == {"percent": "3.5", "fixed": "PEN 0.50", "igv": True}
    assert pago.webhook_secrets == (WEBHOOK_SECRET,)
    assert pago.base_url == "http://127.0.0.1:8801"

    stripe = config.provider_settings("stripe", StripeSettings)
    assert stripe.api_key == "sk_test_51Hx0000"
    assert stripe.webhook_secrets == ("whsec_new_0001", "whsec_old_0002")
    assert stripe.timeout == 5.0
    assert isinstance(stripe.timeout, float)

    # Redaction's values: each class's own secret fields, the base's webhook secrets.
    assert sorted(pago.secret_values()) == sorted([SECRET_ACCESS, SECRET_KEY, WEBHOOK_SECRET])
    assert sorted(stripe.secret_values()) == sorted(
        ["whsec_new_0001", "whsec_old_0002", "sk_test_51Hx0000"])

    everything = config.all_provider_settings(CLASSES)
    assert everything == {"pagoefectivo": pago, "stripe": stripe}
    assert check_config(path, CLASSES, env=ENV) == []


def test_defaults_when_sections_are_absent() -> None:
    config = load_config({})
    assert config == Config()
    assert config.store.url == DEFAULT_STORE_URL == "sqlite:///pasarela.db"
    assert config.events.dispatch == "inline"
    assert config.routes == ()
    assert config.providers == {}
    assert config.source is None


def test_unconfigured_provider_gets_default_settings() -> None:
    settings = load_config({}).provider_settings("fake", ProviderSettings)
    assert settings == ProviderSettings()


def test_path_like_and_str_sources(tmp_path: Path) -> None:
    path = write(tmp_path, '[events]\ndispatch = "inline"\n')
    assert load_config(str(path)).events.dispatch == "inline"
    assert load_config(path).source == str(path)


# --- conversions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("48h", timedelta(hours=48)),
        ("30m", timedelta(minutes=30)),
        ("2d", timedelta(days=2)),
        ("90s", timedelta(seconds=90)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d 12h", timedelta(days=1, hours=12)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    settings = structure_settings("p", {"expiry": text}, ProviderSettings, env={})
    assert settings.expiry == expected


@pytest.mark.parametrize("text", ["48", "48 hours", "h", "", "1.5h", "30m1h", "-1h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(text)
    with pytest.raises(InvalidConfigError) as info:
        structure_settings("p", {"expiry": text}, ProviderSettings, env={})
    assert errors_of(info) == [
        "providers.p.expiry: expected a duration like '48h', '30m', '2d' or '90s'"
    ]


def test_duration_must_be_a_string() -> None:
    with pytest.raises(InvalidConfigError) as info:
        structure_settings("p", {"expiry": 48}, ProviderSettings, env={})
    assert errors_of(info) == [
        "providers.p.expiry: expected a duration like '48h', '30m', '2d' or '90s', "
        "got an integer"
    ]


def test_money() -> None:
    settings = structure_settings(
        "p", {"min_amount": "PEN 0.50", "max_amount": "PEN 1,000.00"}, ProviderSettings, env={}
    )
    assert settings.min_amount == Money(50, "PEN")
    assert settings.max_amount == Money(100000, "PEN")


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ("PEN 0.505", "PEN has 2 decimals"),
        ("0.50", "expected 'CUR 12.50'"),
        ("ZZZ 1", "unknown ISO 4217 currency"),
        (50, "got an integer"),
    ],
)
def test_bad_money(value: object, detail: str) -> None:
    [error] = settings_errors({"min_amount": value}, ProviderSettings)
    assert error.startswith("providers.pagoefectivo.min_amount: expected an amount like 'PEN 0.50'")
    assert detail in error


def test_webhook_secrets_string_or_list() -> None:
    one = structure_settings("p", {"webhook_secrets": "s1"}, ProviderSettings, env={})
    many = structure_settings("p", {"webhook_secrets": ["s1", "s2"]}, ProviderSettings, env={})
    assert one.webhook_secrets == ("s1",)
    assert many.webhook_secrets == ("s1", "s2")
    assert settings_errors({"webhook_secrets": ["ok", 7]}, ProviderSettings) == [
        "providers.pagoefectivo.webhook_secrets[1]: expected a string, got an integer"
    ]
    assert settings_errors({"webhook_secrets": {"a": "b"}}, ProviderSettings) == [
        "providers.pagoefectivo.webhook_secrets: expected an array, got a table"
    ]


def test_lone_string_for_a_list_elsewhere() -> None:
    config = load_config({"plugins": {"modules": "my.hooks"}, "checkout": {"preference": "x"}})
    assert config.plugins.modules == ("my.hooks",)
    assert config.checkout.preference == ("x",)


def test_strict_scalars() -> None:
    errors = settings_errors(
        {
            **PAGO_OK,
            "service_id": "1028",
            "timeout": True,
            "max_retries": 2.5,
            "enabled": "yes",
            "base_url": 8801,
            "ratio": "1.5",
        }
    )
    assert sorted(errors) == [
        "providers.pagoefectivo.base_url: expected a string, got an integer",
        "providers.pagoefectivo.enabled: expected true or false, got a string",
        "providers.pagoefectivo.max_retries: expected an integer, got a float",
        "providers.pagoefectivo.ratio: expected a number, got a string",
        "providers.pagoefectivo.service_id: expected an integer, got a string",
        "providers.pagoefectivo.timeout: expected a number, got a boolean",
    ]


def test_enums_literals_lists_and_typed_mappings() -> None:
    settings = structure_settings(
        "pagoefectivo",
        {
            **PAGO_OK,
            "mode": "embedded",
            "channel": "app",
            "tags": ["a", "b"],
            "extra_fees": {"night": "PEN 1.00"},
        },
        PagoSettings,
        env={},
    )
    assert settings.mode is Mode.EMBEDDED
    assert settings.channel == "app"
    assert settings.tags == ["a", "b"]
    assert settings.extra_fees == {"night": Money(100, "PEN")}
    errors = settings_errors(
        {**PAGO_OK, "mode": "popup", "channel": "tv", "extra_fees": {"night": "PEN x"}}
    )
    assert sorted(errors) == [
        "providers.pagoefectivo.channel: expected 'web' or 'app'",
        "providers.pagoefectivo.extra_fees.night: expected an amount like 'PEN 0.50': "
        "expected 'CUR 12.50', got 'PEN x'",
        "providers.pagoefectivo.mode: expected one of 'redirect', 'embedded'",
    ]


# --- env: references --------------------------------------------------------------------------


def test_env_reference_resolves_and_coerces_to_the_field_type() -> None:
    env = {**ENV, "PE_SERVICE_ID": "2041", "PE_SANDBOX_PAY": "true", "PE_EXPIRY": "2d",
           "PE_TIMEOUT": "2.5"}
    settings = structure_settings(
        "pagoefectivo",
        {
            "access_key": "env:PAGOEFECTIVO_ACCESS_KEY",
            "secret_key": "env:PAGOEFECTIVO_SECRET_KEY",
            "service_id": "env:PE_SERVICE_ID",
            "sandbox_pay": "env:PE_SANDBOX_PAY",
            "expiry": "env:PE_EXPIRY",
            "timeout": "env:PE_TIMEOUT",
            "webhook_secrets": ["env:PAGOEFECTIVO_SECRET_KEY", "literal-secret"],
        },
        PagoSettings,
        env=env,
    )
    assert settings.access_key == SECRET_ACCESS
    assert settings.service_id == 2041
    assert settings.sandbox_pay is True
    assert settings.expiry == timedelta(days=2)
    assert settings.timeout == 2.5
    assert settings.webhook_secrets == (SECRET_KEY, "literal-secret")
    assert isinstance(settings.access_key, Secret)  # a str, masked in any repr
    assert repr(settings.access_key) == "'***'"


def test_env_reference_in_top_level_sections() -> None:
    config = load_config({"store": {"url": "env:DATABASE_URL"}}, env=ENV)
    assert config.store.url == ENV["DATABASE_URL"]


def test_env_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PASARELA_TEST_STORE", "sqlite:///from-env.db")
    monkeypatch.setenv("PASARELA_TEST_KEY", "key-from-os-env")
    config = load_config({"store": {"url": "env:PASARELA_TEST_STORE"}})
    assert config.store.url == "sqlite:///from-env.db"
    settings = structure_settings("s", {"api_key": "env:PASARELA_TEST_KEY"}, StripeSettings)
    assert settings.api_key == "key-from-os-env"


def test_missing_empty_and_malformed_env_references() -> None:
    errors = settings_errors(
        {
            "access_key": "env:NOT_SET_ANYWHERE",
            "secret_key": "env:EMPTY_ONE",
            "service_id": "env:1BAD",
        },
        env={"EMPTY_ONE": ""},
    )
    # One error per problem: no "expected an integer" noise on top of the env error.
    assert errors == [
        "providers.pagoefectivo.access_key: environment variable NOT_SET_ANYWHERE is not set",
        "providers.pagoefectivo.secret_key: environment variable EMPTY_ONE is empty",
        "providers.pagoefectivo.service_id: 'env:' must be followed by an environment "
        "variable name",
    ]


def test_env_value_of_the_wrong_shape_names_the_variable_not_the_value() -> None:
    errors = settings_errors(
        {**PAGO_OK, "service_id": "env:PE_SERVICE_ID", "expiry": "env:PE_EXPIRY"},
        env={"PE_SERVICE_ID": "not-a-number-Zx81", "PE_EXPIRY": "forever-Zx81"},
    )
    assert sorted(errors) == [
        "providers.pagoefectivo.expiry: expected a duration like '48h', '30m', '2d' or '90s' "
        "(from environment variable PE_EXPIRY)",
        "providers.pagoefectivo.service_id: expected an integer (from environment variable "
        "PE_SERVICE_ID)",
    ]


def test_missing_env_in_a_list_is_indexed() -> None:
    errors = settings_errors(
        {**PAGO_OK, "webhook_secrets": ["whsec_a", "env:GONE"]}, env={}
    )
    assert errors == [
        "providers.pagoefectivo.webhook_secrets[1]: environment variable GONE is not set"
    ]


# --- error paths --------------------------------------------------------------------------------


def test_unknown_setting_suggests_the_closest() -> None:
    with pytest.raises(InvalidConfigError) as info:
        structure_settings("stripe", {"api_keey": "x"}, StripeSettings, env={})
    assert errors_of(info) == [
        "providers.stripe.api_key: missing required setting",
        "providers.stripe.api_keey: unknown setting; did you mean api_key?",
    ]
    assert isinstance(info.value, ConfigurationError)


def test_unknown_keys_in_sections() -> None:
    with pytest.raises(InvalidConfigError) as info:
        load_config({"stor": {}, "store": {"uri": "x"}, "zzz": 1})
    assert errors_of(info) == [
        "stor: unknown section; did you mean store?",
        "store.uri: unknown setting; did you mean url?",
        "zzz: unknown section; known: store, plugins, checkout, events, worker, pages, "
        "alerts, audit, privacy, relays, providers, routes, merchants",
    ]


def test_privacy_keys_are_checked_naming_each_and_never_shown() -> None:
    good = "x" * 43 + "="
    with pytest.raises(InvalidConfigError) as info:
        load_config({"privacy": {"keys": ["env:GOOD", "env:BAD", "env:NONE"]}},
                    env={"GOOD": good, "BAD": "secret-but-short"})
    assert sorted(errors_of(info)) == [
        "privacy.keys[1]: decodes to 12 bytes, not 32 (make one with `pasarela customers "
        "new-key`)",
        "privacy.keys[2]: environment variable NONE is not set",
    ]
    assert "secret-but-short" not in str(info.value)
    config = load_config({"privacy": {"keys": ["env:GOOD"]}}, env={"GOOD": good})
    assert config.privacy.keys == (good,)
    assert good not in repr(config)


def test_type_errors_name_their_path() -> None:
    with pytest.raises(InvalidConfigError) as info:
        load_config(
            {
                "store": "sqlite://",
                "events": {"dispatch": "later"},
                "checkout": {"preference": [1]},
                "providers": {"ok": "not a table"},
                "plugins": {"modules": [["nested"]]},
            }
        )
    assert errors_of(info) == [
        "store: expected a table, got a string",
        "events.dispatch: expected 'inline' or 'worker'",
        "checkout.preference[0]: expected a string, got an integer",
        "providers.ok: expected a table, got a string",
        "plugins.modules[0]: expected a string, got an array",
    ]


def test_route_errors() -> None:
    with pytest.raises(InvalidConfigError) as info:
        load_config(
            {
                "routes": [
                    {"name": "a", "use": []},
                    {"name": "a", "use": ["x"]},
                    {"use": ["x"], "when": "card"},
                    "zzz",
                    {"name": " ", "use": ["x"], "weight": 3},
                ]
            }
        )
    assert errors_of(info) == [
        "routes[2].name: missing required setting",
        "routes[2].when: expected a table, got a string",
        "routes[3]: expected a table, got a string",
        "routes[4].weight: unknown setting; did you mean weights?",
        "routes[0].use: name at least one provider",
        "routes[1].name: duplicate route name (also routes[0])",
    ]


def test_routes_must_be_an_array() -> None:
    with pytest.raises(InvalidConfigError) as info:
        load_config({"routes": {"name": "x"}})
    assert errors_of(info) == ["routes: expected an array of tables ([[routes]])"]


def test_provider_names_are_checked() -> None:
    with pytest.raises(InvalidConfigError) as info:
        load_config({"providers": {"Pago-Efectivo": {}}})
    assert errors_of(info) == ["providers.Pago-Efectivo: provider names match ^[a-z][a-z0-9_]*$"]


def test_common_setting_rules() -> None:
    errors = settings_errors(
        {
            "environment": "prod",
            "timeout": 0,
            "max_retries": -1,
            "expiry": "0s",
            "min_amount": "PEN 10",
            "max_amount": "PEN 5",
        },
        ProviderSettings,
    )
    assert errors == [
        "providers.pagoefectivo.environment: expected 'sandbox' or 'production'",
        "providers.pagoefectivo.timeout: must be more than 0 seconds",
        "providers.pagoefectivo.max_retries: must not be negative",
        "providers.pagoefectivo.expiry: must be longer than 0",
        "providers.pagoefectivo.max_amount: must not be less than min_amount",
    ]
    assert settings_errors(
        {"min_amount": "PEN 10", "max_amount": "USD 50"}, ProviderSettings
    ) == ["providers.pagoefectivo.max_amount: must be in the same currency as min_amount"]


def test_settings_class_validator_error_is_placed_on_its_field() -> None:
    assert settings_errors({**PAGO_OK, "service_id": 0}) == [
        "providers.pagoefectivo.service_id: must be positive"
    ]


def test_provider_table_must_be_a_table() -> None:
    with pytest.raises(InvalidConfigError) as info:
        structure_settings("stripe", "sk_live", StripeSettings)  # type: ignore[arg-type]
    assert errors_of(info) == ["providers.stripe: expected a table"]


def test_all_errors_are_collected_in_one_exception() -> None:
    errors = settings_errors(
        {
            "access_key": 1,
            "secret_key": "env:NOPE",
            "service_id": "x",
            "expiry": "soon",
            "min_amount": "PEN",
            "acces_key": "x",
            "environment": "live",
        },
        env={},
    )
    assert len(errors) == 7
    paths = sorted(error.split(":")[0] for error in errors)
    assert paths == sorted(
        f"providers.pagoefectivo.{key}"
        for key in (
            "access_key", "secret_key", "service_id", "expiry", "min_amount", "acces_key",
            "environment",
        )
    )


def test_error_message_lists_every_error(tmp_path: Path) -> None:
    path = write(tmp_path, '[events]\ndispatch = 1\n[store]\nurl = 2\n')
    with pytest.raises(InvalidConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"2 configuration errors in {path}:")
    assert "  events.dispatch: expected 'inline' or 'worker'" in message
    assert "  store.url: expected a string, got an integer" in message
    assert info.value.source == str(path)


def test_single_error_message_is_the_error() -> None:
    with pytest.raises(InvalidConfigError) as info:
        load_config({"events": {"dispatch": "x"}})
    assert str(info.value) == "events.dispatch: expected 'inline' or 'worker'"


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[store]\nurl = "sqlite://"\n\n[providers.stripe\napi_key = 1\n')
    with pytest.raises(InvalidConfigError) as info:
        load_config(path)
    [error] = errors_of(info)
    assert error.startswith(f"{path}: invalid TOML: ")
    assert "line 4" in error


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfigError) as info:
        load_config(tmp_path / "nope.toml")
    [error] = errors_of(info)
    assert error.startswith(f"{tmp_path / 'nope.toml'}: cannot read")


def test_all_provider_settings_checks_names_and_references() -> None:
    config = load_config(
        {
            "checkout": {"preference": ["pagoefectivo", "yape"]},
            "providers": {
                "strip": {"api_key": "x"},
                "stripe": {"api_key": "x", "timeout": "fast"},
                "pagoefectivo": PAGO_OK,
            },
            "routes": [{"name": "cards", "use": ["stripe", "adyen"]}],
        }
    )
    with pytest.raises(InvalidConfigError) as info:
        config.all_provider_settings(CLASSES)
    assert errors_of(info) == [
        "providers.strip: no provider named 'strip' is installed "
        "(installed: pagoefectivo, stripe); did you mean stripe?",
        "providers.stripe.timeout: expected a number, got a string",
        "checkout.preference[1]: no provider named 'yape' is installed "
        "(installed: pagoefectivo, stripe)",
        "routes[0].use[1]: no provider named 'adyen' is installed "
        "(installed: pagoefectivo, stripe)",
    ]


def test_check_config_reports_both_phases(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [events]
        dispatch = "sometimes"

        [providers.stripe]
        api_key = "env:STRIPE_KEY_UNSET"

        [providers.pagoefectivo]
        access_key = "a"
        secret_key = "b"
        service_id = "1028"
        """,
    )
    assert check_config(path, CLASSES, env={}) == [
        "events.dispatch: expected 'inline' or 'worker'",
        "providers.stripe.api_key: environment variable STRIPE_KEY_UNSET is not set",
        "providers.pagoefectivo.service_id: expected an integer, got a string",
    ]
    # Without the provider classes only the file itself is checked.
    assert check_config(path, env={}) == ["events.dispatch: expected 'inline' or 'worker'"]
    assert check_config(tmp_path / "absent.toml")[0].endswith("No such file or directory")


# --- secrets --------------------------------------------------------------------------------------


def _all_text(exc: BaseException) -> str:
    return "\n".join([str(exc), repr(exc), *getattr(exc, "errors", [])])


def test_secrets_never_in_error_messages() -> None:
    secrets = {
        "PE_ACCESS": "AK-live-Q7w9Zr2",
        "PE_ID": "id-secretish-991",
        "PE_AMOUNT": "PEN 3.14159",
    }
    table = {
        "access_key": "env:PE_ACCESS",
        "secret_key": 77777777,  # wrong type: the value is not echoed
        "service_id": "env:PE_ID",  # secret-looking env value in an int field
        "min_amount": "env:PE_AMOUNT",  # env value in a Money field
        "acces_key": "sk_live_leaked_987",  # a secret under a misspelled key
        "webhook_secrets": ["whsec_live_4411", 5],
    }
    with pytest.raises(InvalidConfigError) as info:
        structure_settings("pagoefectivo", table, PagoSettings, env=secrets)
    text = _all_text(info.value)
    for leaked in ("Q7w9Zr2", "secretish", "3.14159", "77777777", "leaked_987", "4411"):
        assert leaked not in text
    assert "environment variable PE_ID" in text
    assert "environment variable PE_AMOUNT" in text


def test_secrets_scrubbed_from_validator_messages() -> None:
    def no_spaces(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
        if " " in value:
            raise ValueError(f"api key {value!r} has a space")

    @attrs.frozen(kw_only=True)
    class Picky(ProviderSettings):
        api_key: str = attrs.field(repr=False, metadata={"secret": True}, validator=no_spaces)
        region: str = "pe"

    with pytest.raises(InvalidConfigError) as info:
        structure_settings("picky", {"api_key": "sk live 123"}, Picky, env={})
    assert "sk live 123" not in _all_text(info.value)
    assert errors_of(info) == ["providers.picky: invalid value: api key '***' has a space"]
    with pytest.raises(InvalidConfigError) as info:
        structure_settings("picky", {"api_key": "env:K"}, Picky, env={"K": "from env 42"})
    assert "from env 42" not in _all_text(info.value)


def test_secrets_never_in_reprs(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD), env={**ENV})
    config_with_db = load_config({"store": {"url": "env:DATABASE_URL"}}, env=ENV)
    texts = [
        repr(config),
        repr(config_with_db),
        repr(config.provider_settings("pagoefectivo", PagoSettings)),
        repr(config.provider_settings("stripe", StripeSettings)),
    ]
    for text in texts:
        for secret in (SECRET_ACCESS, SECRET_KEY, WEBHOOK_SECRET, "sk_test_51Hx0000",
                       "db-pass-7731", "whsec_new_0001"):
            assert secret not in text
    assert "postgresql://pasarela:***@db.internal:5432/pasarela" in repr(config_with_db)


def test_config_equality_ignores_env() -> None:
    assert load_config({}, env={"A": "1"}) == load_config({}, env={"B": "2"})


@pytest.mark.parametrize(("url", "expected"), [
    ("sqlite:///pasarela.db", "sqlite:///{base}/pasarela.db"),
    ("sqlite:///data/p.db?timeout=5", "sqlite:///{base}/data/p.db?timeout=5"),
    ("sqlite+pysqlite:///p.db", "sqlite+pysqlite:///{base}/p.db"),
    ("sqlite:////var/db/p.db", "sqlite:////var/db/p.db"),
    ("sqlite://", "sqlite://"),
    ("sqlite:///:memory:", "sqlite:///:memory:"),
    ("postgresql+psycopg://u@db/pay", "postgresql+psycopg://u@db/pay"),
])
def test_relative_sqlite_paths_are_the_config_files_folders(
        tmp_path: Path, url: str, expected: str) -> None:
    from pasarela.config.sections import resolve_store_url

    assert resolve_store_url(url, tmp_path) == expected.format(base=tmp_path.resolve())


def test_a_command_run_elsewhere_opens_the_configs_store(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shop = tmp_path / "shop"
    shop.mkdir()
    path = write(shop, '[store]\nurl = "sqlite:///pasarela.db"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert load_config(path).store.url == f"sqlite:///{(shop / 'pasarela.db').resolve()}"
    # with no [store] section, the default file is beside the config too
    bare = write(shop, "", name="bare.toml")
    assert load_config(bare).store.url == f"sqlite:///{(shop / 'pasarela.db').resolve()}"


def test_the_outbox_section_is_refused_with_its_new_name(tmp_path: Path) -> None:
    path = write(tmp_path, '[outbox]\ndispatch = "worker"\n')
    assert check_config(path, env={}) == ["outbox: renamed to [events]"]
