"""Settings come from the environment, typed and checked, with errors that name the variable."""
import pytest

from app import create_app
from utils.config import DEFAULT_INPUT_TEMPLATE, ConfigError, Settings


@pytest.fixture
def env(monkeypatch):
    for name in ("DATABASE_URL", "REDIS_URL", "APIFY_TOKEN", "APIFY_INPUT_TEMPLATE", "BATCH_SIZE",
                 "TASK_TIME_LIMIT_SECONDS", "BROKER_VISIBILITY_TIMEOUT_SECONDS", "RETRY_BACKOFF_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults(env):
    settings = Settings.from_env(load_dotenv_file=False)
    assert settings.database_url == "" and settings.redis_url == ""
    assert settings.batch_size == 50 and settings.write_chunk_size == 1000
    assert settings.apify_input_template == DEFAULT_INPUT_TEMPLATE
    assert settings.task_time_limit_seconds < settings.broker_visibility_timeout_seconds


def test_typed_values(env):
    env.setenv("BATCH_SIZE", " 25 ")
    env.setenv("RETRY_BACKOFF_SECONDS", "0.5")
    env.setenv("APIFY_INPUT_TEMPLATE", '{"Account": "{accounts}", "resultsLimit": "{limit}"}')
    settings = Settings.from_env(load_dotenv_file=False)
    assert settings.batch_size == 25 and settings.retry_backoff_seconds == 0.5
    assert settings.apify_input_template == {"Account": "{accounts}", "resultsLimit": "{limit}"}


@pytest.mark.parametrize("name, value, fragment", [
    ("BATCH_SIZE", "fifty", "BATCH_SIZE='fifty' is not a valid int"),
    ("BATCH_SIZE", "0", "BATCH_SIZE='0' must be at least 1"),
    ("APIFY_INPUT_TEMPLATE", "[1]", "APIFY_INPUT_TEMPLATE='[1]' is not a valid JSON object"),
    ("APIFY_INPUT_TEMPLATE", "{oops", "is not a valid JSON object"),
    ("DATABASE_URL", "mysql://x", "DATABASE_URL must be a postgresql:// or sqlite:// URL"),
    ("TASK_TIME_LIMIT_SECONDS", "999999", "BROKER_VISIBILITY_TIMEOUT_SECONDS must exceed"),
])
def test_bad_values_name_the_variable(env, name, value, fragment):
    env.setenv(name, value)
    with pytest.raises(ConfigError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        Settings.from_env(load_dotenv_file=False)


def test_create_app_overrides_by_field_name(postgres_url, redis_url):
    app = create_app({"database_url": postgres_url, "redis_url": redis_url, "batch_size": 7})
    assert app.config["SETTINGS"].batch_size == 7
    with pytest.raises(ConfigError, match="unknown settings: batch_sise"):
        create_app({"batch_sise": 7})
