"""Settings: read once from the environment (and `.env`), passed down from the wiring."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ConfigError

# Values copied from examples and docs that must never reach Slack as real secrets.
PLACEHOLDERS = frozenset(
    {
        "",
        "changeme",
        "change-me",
        "changethis",
        "xoxb-your-token",
        "xapp-your-token",
        "secret",
        "todo",
    }
)

WHERE = {
    "SLACK_BOT_TOKEN": "the app's OAuth & Permissions page, 'Bot User OAuth Token' (xoxb-…)",
    "SLACK_SIGNING_SECRET": "the app's Basic Information page, 'Signing Secret'",
    "SLACK_APP_TOKEN": (
        "the app's Basic Information page, 'App-Level Tokens' with connections:write (xapp-…)"
    ),
}

PREFIXES = {"SLACK_BOT_TOKEN": "xoxb-", "SLACK_APP_TOKEN": "xapp-"}


class Settings(BaseSettings):
    """Everything an operator configures, with DESIGN.md's names and defaults."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=True
    )

    SLACK_BOT_TOKEN: SecretStr | None = None
    SLACK_SIGNING_SECRET: SecretStr | None = None
    SLACK_APP_TOKEN: SecretStr | None = None
    SLACK_API_URL: str = "https://slack.com/api/"
    DATABASE_URL: str = "sqlite+aiosqlite:///incidents.db"
    PLAYBOOKS_DIR: str = "playbooks"
    INCIDENT_TIMEZONE: str = "UTC"
    INCIDENTS_CHANNEL: str | None = None
    PAGERDUTY_EVENTS_URL: str = "https://events.pagerduty.com/v2/enqueue"
    OPSGENIE_API_URL: str = "https://api.opsgenie.com"
    POSTMORTEM_TOKEN: SecretStr | None = None
    PAGERDUTY_WEBHOOK_SECRET: SecretStr | None = None
    # On-call lookups (PagerDuty REST; Opsgenie's key is the role's api_key_env or this one).
    PAGERDUTY_API_URL: str = "https://api.pagerduty.com"
    PAGERDUTY_API_TOKEN: SecretStr | None = None
    OPSGENIE_API_KEY: SecretStr | None = None
    # Alerts from monitoring: the endpoints are off without a token.
    ALERT_WEBHOOK_TOKEN: SecretStr | None = None
    GRAFANA_WEBHOOK_SECRET: SecretStr | None = None
    ALERTS_CHANNEL: str | None = None
    # Follow-up trackers.
    GITHUB_API_URL: str = "https://api.github.com"
    GITHUB_WEBHOOK_SECRET: SecretStr | None = None
    JIRA_WEBHOOK_SECRET: SecretStr | None = None
    HOST: str = "0.0.0.0"
    PORT: int = Field(default=3000, ge=1, le=65535)
    LOG_LEVEL: str = "INFO"
    LOG_FORMAT: str = "text"  # text | json

    @field_validator("SLACK_API_URL")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    @field_validator("INCIDENT_TIMEZONE")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"'{value}' is not an IANA time zone (e.g. America/Los_Angeles)"
            ) from exc
        return value

    @property
    def timezone(self) -> ZoneInfo:
        """The zone people read times in."""
        return ZoneInfo(self.INCIDENT_TIMEZONE)

    def secret(self, name: str) -> str:
        """The value of a required secret, or ConfigError naming it and where to get it."""
        value: SecretStr | None = getattr(self, name)
        raw = value.get_secret_value().strip() if value is not None else ""
        where = f"get it from {WHERE[name]}" if name in WHERE else ""
        if not raw:
            raise ConfigError(name, "is not set", where)
        if raw.lower() in PLACEHOLDERS or raw.lower().startswith(("xoxb-your", "your-", "<")):
            raise ConfigError(name, "still holds a placeholder value", where)
        prefix = PREFIXES.get(name)
        if prefix and not raw.startswith(prefix):
            raise ConfigError(name, f"must start with '{prefix}'", where)
        return raw

    def require(self, *names: str) -> None:
        """Refuse to go on unless every named secret is set to a real value."""
        for name in names:
            self.secret(name)


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, turning pydantic's validation report into one ConfigError line."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        variable = str(first["loc"][0]) if first["loc"] else "configuration"
        raise ConfigError(variable, f"is invalid: {first['msg']}") from None
