-- A job-end callback signing secret per API key, so no tenant can sign another's callbacks.
alter table api_keys add column if not exists webhook_secret text;
